/* Threads over checkpoint/restart cycles. Usage: cov_threads LIMIT [exact]
 * Held across every checkpoint and released only at the last tick (after the restarts):
 * - main holds a recursive mutex 3 times and an error-checking mutex: a timed relock must give
 *   EDEADLK, the recursive one must relock; a holder thread holds two more, which main may not
 *   unlock (EPERM) nor take (EBUSY); at the end each owner unlocks (0) and a second unlock
 *   gives EPERM;
 * - a thread blocked in pause() (deferred cancellation) is cancelled and joined: PTHREAD_CANCELED;
 * - a thread that locked a robust mutex before the checkpoint, and one that exists since before
 *   it and locks another one after the restart, both exit holding it: the next locker gets
 *   EOWNERDEAD;
 * - a thread that blocks SIGWINCH got it from pthread_kill at start (pending on that thread);
 *   it unblocks it at the end: the handler runs exactly once, on that thread;
 * - a thread on a user-supplied stack (pthread_attr_setstack on mmap'ed memory) is joined.
 * Every tick: 4 workers keep a __thread counter equal to what they published, and glibc's rseq
 * cpu_id agrees with getcpu; a thread pinned to the last CPU sees that set in sched_getaffinity
 * and that CPU in sched_getcpu and rseq cpu_id;
 * a churner thread creates and joins short threads without pause; main creates 3 threads, joins
 * them and checks their results; main pthread_kill()s one worker (its handler must run on that
 * worker) and raise()s a signal (handled before raise returns); with "exact", getpid() and every
 * gettid() equal their values at start.
 * Prints "tick N" lines, then "done"; "FAIL tick N: <what>" and exit 3 on a mismatch. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 4
static __thread long tls_counter;
static volatile long published[WORKERS], pokes[WORKERS], bad_worker[WORKERS];
static volatile pid_t worker_tid0[WORKERS], worker_tid[WORKERS];
static volatile int stop_workers, exact, ncpu;
static volatile long raised, churned, churn_bad;
static pthread_mutex_t rec, errc, rec2, errc2, robust_a, robust_b;
static volatile int phase; /* 1: holders keep holding; 2: release */
static volatile long cur_tick;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;

static void fail(long n, const char *what) {
    printf("FAIL tick %ld: %s\n", n, what);
    exit(3);
}

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

static int rseq_cpu(void) {
    if (__rseq_size == 0) return -100;
    struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    return (int)rs->cpu_id;
}

static pthread_t w[WORKERS];
/* Identifies the worker by pthread_self (its tid may be fresh after a restart). */
static void on_usr1(int s) {
    (void)s;
    for (int i = 0; i < WORKERS; i++)
        if (pthread_equal(pthread_self(), w[i])) pokes[i]++;
}
static void on_usr2(int s) { (void)s; raised++; }

static void wait_phase(int p) {
    pthread_mutex_lock(&gate);
    while (phase < p) pthread_cond_wait(&gate_cv, &gate);
    pthread_mutex_unlock(&gate);
}

/* Workers are not pinned (a pinned thread starves when other jobs load its CPU): rseq's cpu_id
 * must agree with the getcpu system call read just before or after it. */
static int rseq_agrees(void) {
    for (int i = 0; i < 20; i++) {
        unsigned c0, c1;
        syscall(SYS_getcpu, &c0, NULL, NULL);
        int r = rseq_cpu(), g = sched_getcpu();
        syscall(SYS_getcpu, &c1, NULL, NULL);
        if (r == -100) return g >= 0 && g < CPU_SETSIZE;
        if (c0 == c1 && r == (int)c0 && g == (int)c0) return 1;
    }
    return 0;
}

static void *worker(void *arg) {
    long me = (long)arg;
    worker_tid0[me] = worker_tid[me] = tid();
    while (!stop_workers) {
        worker_tid[me] = tid();
        if (exact && worker_tid[me] != worker_tid0[me]) bad_worker[me] = 2;
        tls_counter++;
        if (tls_counter != published[me] + 1) bad_worker[me] = 3;
        published[me] = tls_counter;
        if (!rseq_agrees()) bad_worker[me] = 6;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return (void *)tls_counter;
}

/* Pinned to the last CPU; its affinity, sched_getcpu and rseq cpu_id must name that CPU. */
static volatile long pinned_bad, pinned_loops;
static void *pinned(void *arg) {
    (void)arg;
    int cpu = ncpu - 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) pinned_bad = 1;
    while (!stop_workers) {
        cpu_set_t got;
        CPU_ZERO(&got);
        if (sched_getaffinity(0, sizeof got, &got) != 0 || !CPU_EQUAL(&got, &set)) pinned_bad = 4;
        int c1 = sched_getcpu(), c2 = rseq_cpu();
        if (c1 != cpu) pinned_bad = 5;
        if (c2 != cpu && c2 != -100) pinned_bad = 6;
        pinned_loops++;
        struct timespec ts = {0, 3 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *short_thread(void *arg) { long k = (long)arg; long s = 0; for (long i = 1; i <= k; i++) s += i; return (void *)s; }

static void *churner(void *arg) {
    (void)arg;
    for (long k = 1; !stop_workers; k++) {
        pthread_t t;
        void *r;
        if (pthread_create(&t, NULL, short_thread, (void *)(k % 1000)) != 0) { churn_bad = 1; continue; }
        if (pthread_join(t, &r) != 0 || (long)r != (k % 1000) * (k % 1000 + 1) / 2) churn_bad = 2;
        churned++;
    }
    return NULL;
}

static volatile long holder_result;
static volatile int holding;
static void *holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(&rec2);
    pthread_mutex_lock(&rec2);
    pthread_mutex_lock(&errc2);
    pthread_mutex_lock(&robust_a);
    holding = 1;
    wait_phase(1);
    wait_phase(2);
    long r = 0;
    if (pthread_mutex_unlock(&errc2) != 0) r |= 1;
    if (pthread_mutex_unlock(&errc2) != EPERM) r |= 2;
    if (pthread_mutex_unlock(&rec2) != 0 || pthread_mutex_unlock(&rec2) != 0) r |= 4;
    if (pthread_mutex_unlock(&rec2) != EPERM) r |= 8;
    holder_result = r;
    return (void *)(r + 1000); /* exits holding robust_a */
}

static void *late_robust(void *arg) {
    (void)arg;
    wait_phase(2);
    pthread_mutex_lock(&robust_b);
    return NULL; /* exits holding robust_b */
}

static pthread_t pend;
static volatile int pend_ready;
static volatile long winch_on_pend, winch_elsewhere, pend_result;
static void on_winch(int s) {
    (void)s;
    if (pthread_equal(pthread_self(), pend)) winch_on_pend++;
    else winch_elsewhere++;
}
static void *pending_holder(void *arg) {
    (void)arg;
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    pend_ready = 1;
    wait_phase(2);
    sigset_t p;
    sigpending(&p);
    long r = sigismember(&p, SIGWINCH) ? 0 : 1;
    pthread_sigmask(SIG_UNBLOCK, &m, NULL);
    if (winch_on_pend != 1) r |= 2;
    return (void *)r;
}

static void *canceled(void *arg) {
    (void)arg;
    int old;
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
    for (;;) pause();
    return NULL;
}

static volatile long user_stack_ok = 1, user_stack_loops;
static char *user_stack;
#define USER_STACK_SIZE (256 * 1024)
static void *on_user_stack(void *arg) {
    (void)arg;
    while (!stop_workers) {
        char here;
        if (&here < user_stack || &here >= user_stack + USER_STACK_SIZE) user_stack_ok = 0;
        user_stack_loops++;
        struct timespec ts = {0, 3 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return (void *)42;
}

static void init_mutex(pthread_mutex_t *m, int type, int robust) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

static int timed_lock(pthread_mutex_t *m, long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return pthread_mutex_timedlock(m, &ts);
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    exact = argc > 2 && strcmp(argv[2], "exact") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    ncpu = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
    pid_t pid0 = getpid(), main_tid0 = tid();
    if (__rseq_size == 0) printf("note: glibc rseq not registered\n");

    init_mutex(&rec, PTHREAD_MUTEX_RECURSIVE, 0);
    init_mutex(&rec2, PTHREAD_MUTEX_RECURSIVE, 0);
    init_mutex(&errc, PTHREAD_MUTEX_ERRORCHECK, 0);
    init_mutex(&errc2, PTHREAD_MUTEX_ERRORCHECK, 0);
    init_mutex(&robust_a, PTHREAD_MUTEX_NORMAL, 1);
    init_mutex(&robust_b, PTHREAD_MUTEX_NORMAL, 1);
    for (int i = 0; i < 3; i++) pthread_mutex_lock(&rec);
    pthread_mutex_lock(&errc);

    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    pthread_t ch, hold, late, canc, ust, pin;
    for (long i = 0; i < WORKERS; i++) pthread_create(&w[i], NULL, worker, (void *)i);
    pthread_create(&ch, NULL, churner, NULL);
    pthread_create(&pin, NULL, pinned, NULL);
    pthread_create(&hold, NULL, holder, NULL);
    pthread_create(&late, NULL, late_robust, NULL);
    pthread_create(&canc, NULL, canceled, NULL);
    signal(SIGWINCH, on_winch);
    pthread_create(&pend, NULL, pending_holder, NULL);
    while (!pend_ready) sched_yield();
    pthread_kill(pend, SIGWINCH);
    user_stack = mmap(NULL, USER_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, user_stack, USER_STACK_SIZE);
    if (pthread_create(&ust, &attr, on_user_stack, NULL) != 0) fail(0, "pthread_create on a user stack");
    while (!worker_tid0[WORKERS - 1] || !holding) sched_yield();
    pthread_mutex_lock(&gate);
    phase = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate);

    long last_pub[WORKERS] = {0}, last_churn = 0, last_ust = 0;
    for (long n = 1; n <= limit; n++) {
        cur_tick = n;
        if (exact && (getpid() != pid0 || tid() != main_tid0)) fail(n, "getpid/gettid changed");
        for (int i = 0; i < WORKERS; i++) {
            if (bad_worker[i]) {
                static const char *why[] = {"", "", "worker gettid changed", "__thread counter", "", "",
                                            "glibc rseq cpu_id disagrees with getcpu"};
                fail(n, why[bad_worker[i]]);
            }
        }
        if (pinned_bad) {
            static const char *why[] = {"", "sched_setaffinity", "", "", "sched_getaffinity changed",
                                        "sched_getcpu not the pinned cpu", "glibc rseq cpu_id not the pinned cpu"};
            fail(n, why[pinned_bad]);
        }
        if (winch_on_pend || winch_elsewhere) fail(n, "SIGWINCH pending on a thread that blocks it was delivered");
        if (churn_bad) fail(n, "short thread create/join");
        if (!user_stack_ok) fail(n, "thread left its user-supplied stack");

        /* Mutexes held across the checkpoint. */
        int e = timed_lock(&errc, 100);
        if (e != EDEADLK) { printf("note: timedlock of own errorcheck mutex gave %s\n", strerror(e)); fail(n, "error-checking mutex owner (relock by owner is not EDEADLK)"); }
        e = pthread_mutex_trylock(&rec);
        if (e != 0) fail(n, "recursive mutex owner (relock by owner failed)");
        if (pthread_mutex_unlock(&rec) != 0) fail(n, "recursive mutex unlock by owner");
        if (pthread_mutex_unlock(&errc2) != EPERM) fail(n, "unlock of another thread's errorcheck mutex is not EPERM");
        if (pthread_mutex_trylock(&errc2) != EBUSY) fail(n, "trylock of another thread's errorcheck mutex is not EBUSY");
        if (pthread_mutex_unlock(&rec2) != EPERM) fail(n, "unlock of another thread's recursive mutex is not EPERM");

        /* Threads created and joined by main. */
        pthread_t t[3];
        for (long k = 0; k < 3; k++) pthread_create(&t[k], NULL, short_thread, (void *)(n + k));
        for (long k = 0; k < 3; k++) {
            void *r;
            if (pthread_join(t[k], &r) != 0 || (long)r != (n + k) * (n + k + 1) / 2) fail(n, "thread result");
        }

        /* Signals to a specific thread and to self. */
        int k = (int)(n % WORKERS);
        long before = pokes[k];
        if (pthread_kill(w[k], SIGUSR1) != 0) fail(n, "pthread_kill");
        for (int spin = 0; pokes[k] == before; spin++) {
            if (spin > 10000) {
                char path[64], buf[4096];
                snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)worker_tid[k]);
                FILE *f = fopen(path, "r");
                size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
                if (f) fclose(f);
                buf[len] = 0;
                printf("note: worker %d tid %d published %ld pokes %ld\n%s\n", k, (int)worker_tid[k], published[k], pokes[k], buf);
                fail(n, "pthread_kill did not reach the worker");
            }
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        long r0 = raised;
        raise(SIGUSR2);
        if (raised != r0 + 1) fail(n, "raise");

        if (n % 10 == 0) {
            for (int i = 0; i < WORKERS; i++) {
                if (published[i] <= last_pub[i]) fail(n, "a worker stopped");
                last_pub[i] = published[i];
            }
            if (churned <= last_churn) fail(n, "the churner stopped");
            last_churn = churned;
            if (user_stack_loops <= last_ust) fail(n, "the user-stack thread stopped");
            last_ust = user_stack_loops;
        }
        printf("tick %ld\n", n);
        struct timespec ts = {0, 20 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }

    /* The end: everything held since before the checkpoints is released now. */
    long n = limit;
    if (pthread_mutex_unlock(&errc) != 0) fail(n, "unlock of errorcheck mutex by its owner");
    if (pthread_mutex_unlock(&errc) != EPERM) fail(n, "second unlock of errorcheck mutex is not EPERM");
    for (int i = 0; i < 3; i++)
        if (pthread_mutex_unlock(&rec) != 0) fail(n, "unlock of recursive mutex by its owner");
    if (pthread_mutex_unlock(&rec) != EPERM) fail(n, "extra unlock of recursive mutex is not EPERM");
    pthread_mutex_lock(&gate);
    phase = 2;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate);
    void *r;
    if (pthread_join(hold, &r) != 0 || (long)r != 1000) {
        printf("note: holder result %ld\n", holder_result);
        fail(n, "holder's unlocks of its mutexes after restart");
    }
    if (pthread_join(late, NULL) != 0) fail(n, "join late robust thread");
    if (pthread_join(pend, &r) != 0) fail(n, "join pending-signal thread");
    if ((long)r & 1) fail(n, "thread-directed SIGWINCH no longer pending on its thread after restart");
    if ((long)r & 2 || winch_elsewhere) fail(n, "pending SIGWINCH not delivered exactly once to its thread after unblocking");
    int e;
    if ((e = timed_lock(&robust_a, 2000)) != EOWNERDEAD) {
        printf("note: robust_a gave %s\n", strerror(e));
        fail(n, "robust mutex held across the checkpoint by a thread that died: no EOWNERDEAD");
    }
    pthread_mutex_consistent(&robust_a);
    pthread_mutex_unlock(&robust_a);
    if ((e = timed_lock(&robust_b, 2000)) != EOWNERDEAD) {
        printf("note: robust_b gave %s\n", strerror(e));
        fail(n, "robust mutex locked after restart by a thread that died: no EOWNERDEAD");
    }
    pthread_mutex_consistent(&robust_b);
    pthread_mutex_unlock(&robust_b);
    if (pthread_cancel(canc) != 0) fail(n, "pthread_cancel");
    if (pthread_join(canc, &r) != 0 || r != PTHREAD_CANCELED) fail(n, "cancelled thread not PTHREAD_CANCELED");
    stop_workers = 1;
    for (int i = 0; i < WORKERS; i++) {
        if (pthread_join(w[i], &r) != 0 || (long)r != published[i]) fail(n, "worker join/result");
    }
    if (pthread_join(ch, NULL) != 0) fail(n, "join churner");
    if (pthread_join(pin, NULL) != 0 || pinned_loops == 0) fail(n, "join pinned thread");
    if (pthread_join(ust, &r) != 0 || (long)r != 42) fail(n, "join user-stack thread");
    printf("ids pid %d->%d tid %d->%d\n", (int)pid0, (int)getpid(), (int)main_tid0, (int)tid());
    printf("done\n");
    return 0;
}
