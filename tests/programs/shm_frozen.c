/* Shared memory saved as it was at the checkpoint. A parent and its forked child share a
 * MAP_SHARED|MAP_ANONYMOUS region (argv[2] MiB of pseudo-random bytes, default 96) whose
 * last page holds one slot per process. Each process counts in private memory and copies
 * its count into its slot right after (count++ then slot = count), about once a millisecond.
 * A checkpoint that saved the shared region after the processes had resumed would bring back
 * a slot ahead of its process's private count: after a restart each process checks, before
 * every step, that its slot is its count or one behind (frozen between the two stores) and
 * prints "INCONSISTENT" and exits 3 otherwise. The parent prints "tick N" every 100 ms up
 * to argv[1], then stops the child, reaps it and prints "done <parent count> <child count>". */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct slots { volatile long count[2]; volatile int stop; volatile long final[2]; };

static void nap_us(long us) {
  struct timespec ts = {0, us * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run(struct slots *s, int me, long ticks) {
  long count = 0, tick = 0, next = now_ms() + 100;
  while (!s->stop) {
    long slot = s->count[me];
    if (slot > count || slot < count - 1) {
      printf("INCONSISTENT process %d slot %ld count %ld\n", me, slot, count);
      return 3;
    }
    count++;
    s->count[me] = count;
    if (me == 0 && now_ms() >= next) {
      next += 100;
      printf("tick %ld\n", ++tick);
      if (tick == ticks) break;
    }
    nap_us(1000);
  }
  s->final[me] = count;
  return 0;
}

int main(int argc, char **argv) {
  long ticks = argc > 1 ? atol(argv[1]) : 1000000;
  size_t len = (size_t)(argc > 2 ? atol(argv[2]) : 96) << 20;
  setvbuf(stdout, NULL, _IOLBF, 0);
  uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 2;
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < len / 8; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    mem[i] = x;
  }
  struct slots *s = (struct slots *)((char *)mem + len - 4096);
  s->count[0] = s->count[1] = 0;
  s->stop = 0;
  pid_t child = fork();
  if (child == 0) return run(s, 1, 0);
  int rc = run(s, 0, ticks);
  s->stop = 1;
  int status = 0;
  if (waitpid(child, &status, 0) != child) return 4;
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    printf("child status %d\n", status);
    return rc ? rc : 5;
  }
  printf("done %ld %ld\n", s->final[0], s->final[1]);
  return 0;
}
