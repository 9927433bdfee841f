/* Test plugin: at INIT it uses the key-value store (allowed there) and tries the services
 * that INIT does not allow; results go to $PLUGIN_KV_OUT, one "key value" per line. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmtcp.h"

static void put(const char *key, long long value) {
  const char *path = getenv("PLUGIN_KV_OUT");
  if (!path) return;
  char line[128];
  int n = snprintf(line, sizeof line, "%d %s %lld\n", (int)getpid(), key, value);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)n) < 0) {}
  close(fd);
}

static void hook(DmtcpEvent_t event, const DmtcpEventData_t *data) {
  (void)data;
  if (event != DMTCP_EVENT_INIT) return;
  int64_t member = 0, lo = 0, hi = 0;
  put("incr_rc", dmtcp_kvdb_incr("test", "members", 7, 1, &member));
  put("member", member);
  put("min_rc", dmtcp_kvdb_min("test", "lo", 2, (int64_t)getpid(), &lo));
  put("max_rc", dmtcp_kvdb_max("test", "hi", 2, (int64_t)getpid(), &hi));
  put("lo_le_pid", lo <= getpid());
  put("hi_ge_pid", hi >= getpid());
  char key[32], value[32], back[32];
  int klen = snprintf(key, sizeof key, "pid-%d", (int)getpid());
  int vlen = snprintf(value, sizeof value, "value-of-%d", (int)getpid());
  put("set_rc", dmtcp_kvdb_set("test", key, (size_t)klen, value, (size_t)vlen));
  ssize_t got = dmtcp_kvdb_get("test", key, (size_t)klen, back, sizeof back);
  put("get_len", got);
  put("get_same", got == vlen && memcmp(back, value, (size_t)vlen) == 0);
  put("get_missing", dmtcp_kvdb_get("test", "nope", 4, back, sizeof back));
  put("not_a_number", dmtcp_kvdb_incr("test", key, (size_t)klen, 1, NULL));
  put("barrier_at_init", dmtcp_global_barrier("init"));
  put("save_at_init", dmtcp_plugin_save("kv", "x", 1));
}

DMTCP_DECL_PLUGIN("kv-test", "exercises the key-value store at INIT", hook)
