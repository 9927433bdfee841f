/* MAP_SHARED|MAP_ANONYMOUS memory kept across fork: the child increments a shared counter,
 * the parent watches it grow and prints "tick N"; after a restart of both processes the
 * memory must still be shared (the parent sees the child's increments). At the end the
 * parent asks the child to stop through the shared page and reaps it with wait(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared { volatile long counter; volatile int stop; volatile long echo; };

static void nap(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct shared *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) return 2;
    pid_t child = fork();
    if (child == 0) {
        while (!s->stop) { s->counter++; s->echo = s->counter; nap(2); }
        return 0;
    }
    long last = -1, still = 0;
    for (long n = 1; n <= limit; n++) {
        long c = s->counter;
        if (c != last) still = 0;
        else if (++still >= 100) { printf("FAIL tick %ld: the shared counter stopped at %ld\n", n, c); return 3; }
        last = c;
        printf("tick %ld\n", n);
        nap(20);
    }
    s->stop = 1;
    if (wait(NULL) < 0) { printf("FAIL: wait\n"); return 3; }
    printf("done\n");
    return 0;
}
