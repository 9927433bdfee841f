/* Example plugin: appends one line per event to the file named by DMTCP_EVENT_LOG,
 *   "<plugin name> <EVENT> pid=<pid> tid=<tid> gen=<generation>"
 * which shows the order in which the runtime delivers events to its plugins.
 *
 * Build: cc -shared -fPIC -I include -o libevent_log.so event_log.c
 *        (-DPLUGIN_NAME='"other"' builds a second, differently named copy)
 * Use:   DMTCP_EVENT_LOG=/tmp/events dmtcp_launch --with-plugin ./libevent_log.so prog
 *
 * Hooks of PRECHECKPOINT and THREAD_RESUME run while program threads are frozen: this one
 * only formats on the stack and uses open/write/close, never malloc or stdio streams. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "dmtcp.h"

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "event-log"
#endif

static const char *event_name(DmtcpEvent_t e) {
  switch (e) {
    case DMTCP_EVENT_INIT: return "INIT";
    case DMTCP_EVENT_EXIT: return "EXIT";
    case DMTCP_EVENT_ATFORK_PREPARE: return "ATFORK_PREPARE";
    case DMTCP_EVENT_ATFORK_PARENT: return "ATFORK_PARENT";
    case DMTCP_EVENT_ATFORK_CHILD: return "ATFORK_CHILD";
    case DMTCP_EVENT_PRE_EXEC: return "PRE_EXEC";
    case DMTCP_EVENT_POST_EXEC: return "POST_EXEC";
    case DMTCP_EVENT_THREAD_START: return "THREAD_START";
    case DMTCP_EVENT_THREAD_EXIT: return "THREAD_EXIT";
    case DMTCP_EVENT_PRESUSPEND: return "PRESUSPEND";
    case DMTCP_EVENT_PRECHECKPOINT: return "PRECHECKPOINT";
    case DMTCP_EVENT_RESUME: return "RESUME";
    case DMTCP_EVENT_RESTART: return "RESTART";
    case DMTCP_EVENT_THREAD_RESUME: return "THREAD_RESUME";
  }
  return "UNKNOWN";
}

/* The path is read once at INIT: getenv later could race with a frozen setenv. */
static char log_path[512];

static void hook(DmtcpEvent_t event, const DmtcpEventData_t *data) {
  if (event == DMTCP_EVENT_INIT) {
    const char *p = getenv("DMTCP_EVENT_LOG");
    if (p && strlen(p) < sizeof log_path) strcpy(log_path, p);
  }
  if (!log_path[0]) return;
  char line[256];
  int n = snprintf(line, sizeof line, "%s %s pid=%d tid=%ld gen=%u\n", PLUGIN_NAME,
                   event_name(event), (int)getpid(), (long)syscall(SYS_gettid),
                   data ? data->generation : 0);
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)n) != n) dmtcp_log(DMTCP_LOG_WARNING, "event-log: short write");
  close(fd);
}

DMTCP_DECL_PLUGIN(PLUGIN_NAME, "logs every event to $DMTCP_EVENT_LOG", hook)
