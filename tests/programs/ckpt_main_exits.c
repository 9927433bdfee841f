/* The main thread ends with pthread_exit (a zombie leader); a worker keeps counting and must
 * be checkpointed and restarted like any thread. Prints "tick N" lines. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long limit;

static void *worker(void *arg) {
    (void)arg;
    for (long n = 1; n <= limit; n++) {
        printf("tick %ld\n", n);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("done\n");
    exit(0);
}

int main(int argc, char **argv) {
    limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_exit(NULL);
}
