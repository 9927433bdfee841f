/* Example plugin: keeps a program's PostgreSQL connections valid across checkpoint and
 * restart, without changing the program.
 *
 * A server outside the computation cannot be checkpointed with it, and a connection saved in
 * an image is dead after restart. So this plugin
 *   - wraps PQconnectdb/PQfinish to know the program's connections;
 *   - wraps PQexec so that no checkpoint happens in the middle of a query (the query runs
 *     inside dmtcp_disable_ckpt()/dmtcp_enable_ckpt());
 *   - at PRECHECKPOINT (all threads frozen) closes each connection cleanly at the protocol
 *     level (a Terminate message), so the server ends the session and rolls back nothing
 *     committed, and parks a /dev/null descriptor on the socket's fd number; only system
 *     calls, no malloc, as a frozen-window hook must;
 *   - after RESUME or RESTART, the program's next PQexec on that connection first calls
 *     PQreset, which reconnects with the original parameters and keeps the PGconn pointer
 *     the program holds. The reconnect happens on the program's own thread, where libpq may
 *     allocate freely.
 * The program sees only that PQbackendPID() changed. A transaction left open across a
 * checkpoint is rolled back by the server (keep transactions inside one PQexec, or inside a
 * dmtcp_disable_ckpt() section).
 *
 * Build: cc -shared -fPIC -I include -I /usr/include/postgresql -o libpg_reconnect.so \
 *           pg_reconnect.c -ldl
 * Use:   dmtcp_launch --with-plugin ./libpg_reconnect.so ./prog
 * With PG_RECONNECT_LOG=<file>, each disconnect/reconnect appends one line there. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmtcp.h"

#define MAX_CONNS 16

static struct {
  PGconn *conn;
  int parked; /* closed at a checkpoint; reconnect before the next use */
} conns[MAX_CONNS];
static char log_path[512];

static void note(const char *what, int n) {
  if (!log_path[0]) return;
  char line[128];
  int len = snprintf(line, sizeof line, "pg %s %d pid=%d\n", what, n, (int)getpid());
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)len) < 0) {}
  close(fd);
}

static void *next(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (!f) {
    fprintf(stderr, "pg_reconnect: cannot find %s\n", name);
    abort();
  }
  return f;
}

PGconn *PQconnectdb(const char *conninfo) {
  static PGconn *(*real)(const char *);
  if (!real) real = (PGconn * (*)(const char *)) next("PQconnectdb");
  PGconn *c = real(conninfo);
  for (int i = 0; c && i < MAX_CONNS; i++) {
    if (!conns[i].conn) {
      conns[i].conn = c;
      conns[i].parked = 0;
      break;
    }
  }
  return c;
}

void PQfinish(PGconn *c) {
  static void (*real)(PGconn *);
  if (!real) real = (void (*)(PGconn *))next("PQfinish");
  for (int i = 0; i < MAX_CONNS; i++)
    if (conns[i].conn == c) conns[i].conn = NULL;
  real(c);
}

PGresult *PQexec(PGconn *c, const char *query) {
  static PGresult *(*real)(PGconn *, const char *);
  if (!real) real = (PGresult * (*)(PGconn *, const char *)) next("PQexec");
  dmtcp_disable_ckpt();
  for (int i = 0; i < MAX_CONNS; i++) {
    if (conns[i].conn == c && conns[i].parked) {
      PQreset(c);
      conns[i].parked = 0;
      note(PQstatus(c) == CONNECTION_OK ? "reconnected" : "reconnect-failed", PQbackendPID(c));
    }
  }
  PGresult *r = real(c, query);
  dmtcp_enable_ckpt();
  return r;
}

/* Frozen window: system calls only. */
static void park_all(void) {
  int n = 0;
  for (int i = 0; i < MAX_CONNS; i++) {
    if (!conns[i].conn || conns[i].parked) continue;
    int fd = PQsocket(conns[i].conn);
    if (fd < 0) continue;
    /* Terminate: type 'X', length 4 (the length counts itself). */
    static const char terminate[5] = {'X', 0, 0, 0, 4};
    if (send(fd, terminate, sizeof terminate, MSG_NOSIGNAL) < 0) {}
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
      dup3(null_fd, fd, O_CLOEXEC); /* closes the socket; libpq's fd number stays valid */
      close(null_fd);
    }
    conns[i].parked = 1;
    n++;
  }
  note("disconnected", n);
}

static void hook(DmtcpEvent_t event, const DmtcpEventData_t *data) {
  (void)data;
  switch (event) {
    case DMTCP_EVENT_INIT: {
      const char *p = getenv("PG_RECONNECT_LOG");
      if (p && strlen(p) < sizeof log_path) strcpy(log_path, p);
      break;
    }
    case DMTCP_EVENT_PRECHECKPOINT:
      park_all();
      break;
    case DMTCP_EVENT_RESUME:
    case DMTCP_EVENT_RESTART:
      /* Nothing now: the next PQexec reconnects, on the program's thread. */
      note(event == DMTCP_EVENT_RESUME ? "resume" : "restart", 0);
      break;
    default:
      break;
  }
}

DMTCP_DECL_PLUGIN("pg-reconnect", "closes PostgreSQL connections at checkpoint, reopens them on next use",
                  hook)
