/* Example: delaying checkpoints around a critical section.
 *
 *   dmtcp_launch ./critical MARKER SECONDS
 *
 * Inside dmtcp_disable_ckpt() .. dmtcp_enable_ckpt() the program keeps two counters that are
 * briefly inconsistent (as a real program's file and memory would be during an update) and
 * creates MARKER while inside. A checkpoint requested meanwhile waits: its image appears only
 * after MARKER is gone. Prints "inside", "left", then "consistent <a> <b>". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "dmtcp.h"

static volatile long a, b;

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: critical MARKER SECONDS\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  int ms = atoi(argv[2]) * 1000;
  dmtcp_disable_ckpt();
  FILE *m = fopen(argv[1], "w");
  if (!m) return 3;
  fclose(m);
  printf("inside\n");
  for (int i = 0; i < ms / 10; i++) {
    a++; /* a and b differ until the next line: never checkpoint here */
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    b++;
  }
  unlink(argv[1]);
  printf("left\n");
  dmtcp_enable_ckpt();
  /* Give a waiting checkpoint the time to happen before we exit. */
  sleep(5);
  printf("consistent %ld %ld\n", a, b);
  return a == b ? 0 : 1;
}
