/* A thread that blocks every signal with a raw system call (bypassing the runtime's
 * wrappers) cannot be frozen: the checkpoint must fail with a clear reason while the program
 * keeps running correctly. With "unblock" as second argument the thread unblocks after
 * argv[3] ticks, so a later checkpoint succeeds. Prints "tick N". */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile long ticks;
static long unblock_at = -1;

static void *blocker(void *arg) {
    (void)arg;
    unsigned long all = ~0UL, none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
    while (unblock_at < 0 || ticks < unblock_at) usleep(10000);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    for (;;) usleep(10000);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 3 && strcmp(argv[2], "unblock") == 0) unblock_at = atol(argv[3]);
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    pthread_t t;
    pthread_create(&t, NULL, blocker, NULL);
    for (long n = 1; n <= limit; n++) {
        ticks = n;
        printf("tick %ld\n", n);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("done\n");
    return 0;
}
