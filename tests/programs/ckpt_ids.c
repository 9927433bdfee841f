/* Ids after restart: the main thread checks getpid() against the pid it had at start, a worker
 * thread checks gettid() against its own, and pthread_kill() from main must reach the worker
 * (glibc signals the tid cached in the thread descriptor). Prints "tick N" lines. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile long pokes, ticks_seen, worker_ok = 1;
static pid_t worker_tid;

static void on_usr1(int s) { (void)s; if (syscall(SYS_gettid) == worker_tid) pokes++; }

static void *worker(void *arg) {
    (void)arg;
    worker_tid = syscall(SYS_gettid);
    for (;;) {
        if (syscall(SYS_gettid) != worker_tid) worker_ok = 0;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t pid0 = getpid();
    signal(SIGUSR1, on_usr1);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!worker_tid) usleep(1000);
    for (long n = 1; n <= limit; n++) {
        if (getpid() != pid0) { printf("FAIL tick %ld: pid %d, was %d\n", n, getpid(), pid0); return 3; }
        if (!worker_ok) { printf("FAIL tick %ld: worker tid changed\n", n); return 3; }
        long before = pokes;
        pthread_kill(t, SIGUSR1);
        for (int i = 0; i < 200 && pokes == before; i++) usleep(1000);
        if (pokes != before + 1) { printf("FAIL tick %ld: pthread_kill did not reach the worker\n", n); return 3; }
        printf("tick %ld pid %d\n", n, pid0);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("done\n");
    return 0;
}
