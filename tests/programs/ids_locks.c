/* Locks held across checkpoints: glibc records their owner's kernel tid, which a restart with
 * virtual ids changes (tests/tests/ids_locks.rs).
 *
 *   ids_locks ITER
 *
 * WORKERS threads each hold, nearly all the time (they sleep 40 ms per iteration holding
 * them), an error-checking, a recursive (twice), a robust error-checking and a
 * priority-inheritance error-checking mutex, and a rwlock's write lock. Each iteration, still
 * holding them, a worker checks that glibc sees it as the owner (relocking answers EDEADLK, the
 * recursive mutex takes one more level, a condition wait on its mutex times out holding it),
 * releases everything (each unlock must succeed), adds its work to a checksum, and takes every
 * lock again. Worker 0 also holds H, which a waiter thread blocks on inside
 * pthread_mutex_lock through the checkpoints and takes, counts and releases whenever worker 0
 * lets go for 2 ms. Any unexpected answer prints "FAIL <what> <rc>" and exits 1. Worker 0 prints
 * "tick N" per iteration; the end prints "checksum S expected E", "waiter N" and "done". */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3

struct locks {
    pthread_mutex_t err, rec, robust, pi;
    pthread_rwlock_t rw;
    pthread_cond_t cond;
};

static struct locks L[WORKERS];
static pthread_mutex_t H;
static long ITER;
static unsigned long long sums[WORKERS];
static atomic_int stop;
static atomic_long waiter_count;

static void expect(int rc, int want, const char *what, int w) {
    if (rc != want) {
        printf("FAIL %s worker %d: %d (%s), expected %d\n", what, w, rc, strerror(rc), want);
        fflush(stdout);
        exit(1);
    }
}

static void init_mutex(pthread_mutex_t *m, int type, int robust, int pi) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pi) pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    expect(pthread_mutex_init(m, &a), 0, "mutex_init", -1);
    pthread_mutexattr_destroy(&a);
}

static void lock_all(struct locks *l, int w) {
    expect(pthread_mutex_lock(&l->err), 0, "lock err", w);
    expect(pthread_mutex_lock(&l->rec), 0, "lock rec", w);
    expect(pthread_mutex_lock(&l->rec), 0, "lock rec again", w);
    expect(pthread_mutex_lock(&l->robust), 0, "lock robust", w);
    expect(pthread_mutex_lock(&l->pi), 0, "lock pi", w);
    expect(pthread_rwlock_wrlock(&l->rw), 0, "wrlock", w);
    if (w == 0) expect(pthread_mutex_lock(&H), 0, "lock H", w);
}

static void unlock_all(struct locks *l, int w) {
    if (w == 0) expect(pthread_mutex_unlock(&H), 0, "unlock H", w);
    expect(pthread_rwlock_unlock(&l->rw), 0, "rwlock unlock", w);
    expect(pthread_mutex_unlock(&l->pi), 0, "unlock pi", w);
    expect(pthread_mutex_unlock(&l->robust), 0, "unlock robust", w);
    expect(pthread_mutex_unlock(&l->rec), 0, "unlock rec", w);
    expect(pthread_mutex_unlock(&l->rec), 0, "unlock rec again", w);
    expect(pthread_mutex_unlock(&l->err), 0, "unlock err", w);
}

/* Still holding everything: glibc must see this thread as the owner of each lock. */
static void check_owned(struct locks *l, int w) {
    expect(pthread_mutex_lock(&l->err), EDEADLK, "relock err", w);
    expect(pthread_mutex_trylock(&l->rec), 0, "trylock rec", w);
    expect(pthread_mutex_unlock(&l->rec), 0, "unlock rec level", w);
    expect(pthread_mutex_lock(&l->robust), EDEADLK, "relock robust", w);
    expect(pthread_mutex_lock(&l->pi), EDEADLK, "relock pi", w);
    expect(pthread_rwlock_wrlock(&l->rw), EDEADLK, "rw wrlock again", w);
    expect(pthread_rwlock_rdlock(&l->rw), EDEADLK, "rw rdlock in write", w);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    expect(pthread_cond_timedwait(&l->cond, &l->err, &t), ETIMEDOUT, "cond_timedwait", w);
    if (w == 0) expect(pthread_mutex_lock(&H), EDEADLK, "relock H", w);
}

static void *worker(void *arg) {
    int w = (int)(long)arg;
    struct locks *l = &L[w];
    lock_all(l, w);
    for (long k = 1; k <= ITER; k++) {
        check_owned(l, w);
        unlock_all(l, w);
        sums[w] += (unsigned long long)k * 31 + (unsigned long long)w;
        lock_all(l, w);
        if (w == 0) {
            /* The waiter gets H about once per iteration. */
            expect(pthread_mutex_unlock(&H), 0, "hand H over", w);
            usleep(2000);
            expect(pthread_mutex_lock(&H), 0, "take H back", w);
            printf("tick %ld\n", k);
            fflush(stdout);
        }
        usleep(40000);
    }
    unlock_all(l, w);
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        expect(pthread_mutex_lock(&H), 0, "waiter lock H", -1);
        atomic_fetch_add(&waiter_count, 1);
        expect(pthread_mutex_unlock(&H), 0, "waiter unlock H", -1);
        usleep(1000);
    }
    return NULL;
}

int main(int argc, char **argv) {
    ITER = argc > 1 ? atol(argv[1]) : 100;
    setvbuf(stdout, NULL, _IOLBF, 0);
    init_mutex(&H, PTHREAD_MUTEX_ERRORCHECK, 0, 0);
    for (int w = 0; w < WORKERS; w++) {
        init_mutex(&L[w].err, PTHREAD_MUTEX_ERRORCHECK, 0, 0);
        init_mutex(&L[w].rec, PTHREAD_MUTEX_RECURSIVE, 0, 0);
        init_mutex(&L[w].robust, PTHREAD_MUTEX_ERRORCHECK, 1, 0);
        init_mutex(&L[w].pi, PTHREAD_MUTEX_ERRORCHECK, 0, 1);
        pthread_rwlockattr_t ra;
        pthread_rwlockattr_init(&ra);
        pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        expect(pthread_rwlock_init(&L[w].rw, &ra), 0, "rwlock_init", w);
        pthread_cond_init(&L[w].cond, NULL);
    }
    printf("start pid %d\n", getpid());
    pthread_t th[WORKERS], wt;
    for (int w = 0; w < WORKERS; w++) pthread_create(&th[w], NULL, worker, (void *)(long)w);
    pthread_create(&wt, NULL, waiter, NULL);
    for (int w = 0; w < WORKERS; w++) pthread_join(th[w], NULL);
    atomic_store(&stop, 1);
    pthread_join(wt, NULL);
    unsigned long long sum = 0, expected = 0;
    for (int w = 0; w < WORKERS; w++) {
        sum += sums[w];
        for (long k = 1; k <= ITER; k++) expected += (unsigned long long)k * 31 + (unsigned long long)w;
    }
    printf("checksum %llu expected %llu\n", sum, expected);
    printf("waiter %ld\n", atomic_load(&waiter_count));
    printf("done\n");
    return sum == expected ? 0 : 1;
}
