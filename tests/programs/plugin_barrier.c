/* Test plugin: the KV-then-barrier-then-query pattern at a checkpoint. At PRESUSPEND every
 * process counts itself in "arrived-<gen>", waits at a global barrier, then reads the count:
 * all must see every process. At PRECHECKPOINT each publishes its pid with max(), waits at a
 * local barrier, and reads the maximum; at RESUME one more global barrier. Results go to
 * $PLUGIN_BARRIER_OUT as "<pid> <event> <rc> <value>" lines. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmtcp.h"

static char out_path[512];

static void put(const char *what, int rc, long long value) {
  if (!out_path[0]) return;
  char line[128];
  int n = snprintf(line, sizeof line, "%d %s %d %lld\n", (int)getpid(), what, rc, value);
  int fd = open(out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)n) < 0) {}
  close(fd);
}

static void hook(DmtcpEvent_t event, const DmtcpEventData_t *data) {
  char key[32];
  int64_t v = 0;
  int klen = snprintf(key, sizeof key, "arrived-%u", data->generation);
  switch (event) {
    case DMTCP_EVENT_INIT: {
      const char *p = getenv("PLUGIN_BARRIER_OUT");
      if (p && strlen(p) < sizeof out_path) strcpy(out_path, p);
      break;
    }
    case DMTCP_EVENT_PRESUSPEND: {
      int rc = dmtcp_kvdb_incr("barrier-test", key, (size_t)klen, 1, &v);
      rc = rc ? rc : dmtcp_global_barrier("counted");
      char buf[32] = {0};
      ssize_t n = rc ? rc : dmtcp_kvdb_get("barrier-test", key, (size_t)klen, buf, sizeof buf - 1);
      put("count", n < 0 ? (int)n : 0, n < 0 ? -1 : atoll(buf));
      break;
    }
    case DMTCP_EVENT_PRECHECKPOINT: {
      int rc = dmtcp_kvdb_max("barrier-test", "maxpid", 6, getpid(), &v);
      rc = rc ? rc : dmtcp_local_barrier("published");
      rc = rc ? rc : dmtcp_kvdb_max("barrier-test", "maxpid", 6, 0, &v);
      put("maxpid", rc, v);
      break;
    }
    case DMTCP_EVENT_RESUME:
      put("resume", dmtcp_global_barrier("resumed"), 0);
      break;
    default:
      break;
  }
}

DMTCP_DECL_PLUGIN("barrier-test", "publishes, waits at barriers, queries", hook)
