/* Example: a C program that checkpoints itself at a safe point (after finishing a phase of
 * work) and, when it comes back from a restart, checks its state and says so.
 *
 *   cc -I include -o selfckpt selfckpt.c && dmtcp_launch ./selfckpt
 *
 * Prints "phase1 <sum>", then "outcome checkpoint" (or "outcome restart" after
 * dmtcp_restart), "state ok", and "done <sum>". Without the runtime it runs to the end too
 * ("outcome none"): dmtcp.h's weak symbols make the calls answer DMTCP_NOT_PRESENT. */
#include <stdio.h>
#include <stdlib.h>

#include "dmtcp.h"

#define N 100000

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long *v = malloc(N * sizeof *v);
  if (!v) return 2;
  long sum = 0;
  for (long i = 0; i < N; i++) {
    v[i] = i * 3 + 1;
    sum += v[i];
  }
  printf("phase1 %ld\n", sum);

  int r = dmtcp_checkpoint();
  printf("outcome %s\n", r == DMTCP_AFTER_CHECKPOINT ? "checkpoint"
                         : r == DMTCP_AFTER_RESTART  ? "restart"
                         : r == DMTCP_NOT_PRESENT    ? "none"
                                                     : "failed");
  long again = 0;
  for (long i = 0; i < N; i++) again += v[i];
  int ok = again == sum;
  printf("state %s\n", ok ? "ok" : "CORRUPT");
  for (long i = 0; i < N; i++) sum += v[i] % 7;
  printf("done %ld\n", sum);
  free(v);
  return ok && r != -1 ? 0 : 1;
}
