/* Example program for the pg-reconnect plugin: inserts rows 1..N into a table, one committed
 * INSERT each, checkpoints itself after row CKPT (0 = never), and at the end checks that the
 * table holds exactly 1..N (a lost or duplicated row after resume or restart shows up here).
 *
 *   pg_rows "<conninfo>" N CKPT [DELAY_MS]
 *
 * Prints "backend <pid>" at start and after the checkpoint (the pid changes when the plugin
 * reconnected), "outcome <checkpoint|restart|...>", and "rows <count> sum <sum> ok|BAD". */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dmtcp.h"

static int run(PGconn *c, const char *q) {
  PGresult *r = PQexec(c, q);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
  PQclear(r);
  return ok;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: pg_rows CONNINFO N CKPT [DELAY_MS]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  long n = atol(argv[2]), ckpt = atol(argv[3]), delay = argc > 4 ? atol(argv[4]) : 0;
  PGconn *c = PQconnectdb(argv[1]);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(c));
    return 3;
  }
  printf("backend %d\n", PQbackendPID(c));
  if (!run(c, "CREATE TABLE IF NOT EXISTS rows (i bigint PRIMARY KEY)")) return 4;
  for (long i = 1; i <= n; i++) {
    char q[96];
    snprintf(q, sizeof q, "INSERT INTO rows VALUES (%ld)", i);
    if (!run(c, q)) return 5;
    if (i == ckpt) {
      int r = dmtcp_checkpoint();
      printf("outcome %s\n", r == DMTCP_AFTER_CHECKPOINT ? "checkpoint"
                             : r == DMTCP_AFTER_RESTART  ? "restart"
                             : r == DMTCP_NOT_PRESENT    ? "none"
                                                         : "failed");
      if (!run(c, "SELECT 1")) return 6; /* reconnects through the plugin */
      printf("backend %d\n", PQbackendPID(c));
    }
    if (delay > 0) {
      struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  PGresult *r = PQexec(c, "SELECT count(*), coalesce(sum(i), 0) FROM rows");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "select: %s", PQerrorMessage(c));
    return 7;
  }
  long count = atol(PQgetvalue(r, 0, 0)), sum = atol(PQgetvalue(r, 0, 1));
  int ok = count == n && sum == n * (n + 1) / 2;
  printf("rows %ld sum %ld %s\n", count, sum, ok ? "ok" : "BAD");
  PQclear(r);
  PQfinish(c);
  return ok ? 0 : 1;
}
