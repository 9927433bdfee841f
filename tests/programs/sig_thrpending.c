/* Thread-directed pending signals keep their siginfo across checkpoints and restarts.
 * A worker thread blocks SIGUSR1, SIGRTMIN+4 and SIGRTMIN+5. At start, before "tick 1":
 *  - a child process (which then only sleeps) sends tgkill(parent, worker, SIGUSR1) and
 *    tgkill(parent, worker, SIGRTMIN+5): SI_TKILL, si_pid = the child;
 *  - the main thread sends pthread_sigqueue(worker, SIGRTMIN+4) twice, with values 0x41 then
 *    0x42: SI_QUEUE, si_pid = our pid, both instances queued.
 * The main thread prints "tick N" every 20 ms up to argv[1]; then the worker unblocks the
 * signals and its SA_SIGINFO handler records each delivery. The worker checks that the four
 * arrived with the right sender (the pid fork() returned, our getpid()), code and value, in
 * queue order, and prints "kept ... ok" lines; the main thread kills and reaps the child and
 * prints "done". Any mismatch prints "FAIL ..." and exits 3. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { printf("FAIL "); printf(__VA_ARGS__); printf("\n"); exit(3); } while (0)

struct got { int sig, pid, code, value; };
static struct got seen[16];
static volatile int nseen;
static volatile int go, worker_tid;
static pid_t child;

static void on_sig(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    if (nseen < 16)
        seen[nseen] = (struct got){sig, si->si_pid, si->si_code, si->si_value.sival_int};
    nseen++;
}

static sigset_t watched(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGRTMIN + 4);
    sigaddset(&s, SIGRTMIN + 5);
    return s;
}

static void nap(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* The `nth` delivery (0: first) of `sig` must come from `pid` with `code` and `value`. */
static void expect(int sig, int nth, int pid, int code, int value, const char *what) {
    int i = 0;
    for (; i < nseen && i < 16; i++)
        if (seen[i].sig == sig && nth-- == 0) break;
    struct got g = i < nseen && i < 16 ? seen[i] : (struct got){0, 0, 0, 0};
    if (g.sig != sig || g.pid != pid || g.code != code || (value && g.value != value)) {
        for (int k = 0; k < nseen && k < 16; k++)
            printf("  got signal %d si_pid %d si_code %d value %#x\n", seen[k].sig, seen[k].pid,
                   seen[k].code, seen[k].value);
        FAIL("%s: signal %d si_pid %d si_code %d value %#x; want %d, %d, %d, %#x", what, g.sig,
             g.pid, g.code, g.value, sig, pid, code, value);
    }
    printf("kept %s ok\n", what);
}

static void *worker(void *arg) {
    (void)arg;
    worker_tid = gettid();
    while (!go) nap(5);
    sigset_t s = watched(), pend;
    sigpending(&pend);
    if (!sigismember(&pend, SIGUSR1) || !sigismember(&pend, SIGRTMIN + 4) ||
        !sigismember(&pend, SIGRTMIN + 5))
        FAIL("a signal is no longer pending before the worker unblocks them");
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    /* The kernel nests the four deliveries (the last one set up runs first); the two
     * instances of SIGRTMIN+4 keep their queue order. */
    expect(SIGUSR1, 0, child, SI_TKILL, 0, "SIGUSR1 from the child");
    expect(SIGRTMIN + 4, 0, getpid(), SI_QUEUE, 0x41, "first SIGRTMIN+4 from main");
    expect(SIGRTMIN + 4, 1, getpid(), SI_QUEUE, 0x42, "second SIGRTMIN+4 from main");
    expect(SIGRTMIN + 5, 0, child, SI_TKILL, 0, "SIGRTMIN+5 from the child");
    if (nseen != 4) FAIL("%d signals arrived, want 4", nseen);
    return NULL;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 100;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGRTMIN + 4, &sa, NULL);
    sigaction(SIGRTMIN + 5, &sa, NULL);
    /* Blocked before the worker starts, so it inherits the mask. */
    sigset_t s = watched();
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t w;
    if (pthread_create(&w, NULL, worker, NULL) != 0) FAIL("pthread_create");
    while (!worker_tid) nap(1);

    int sent[2];
    if (pipe(sent) != 0) FAIL("pipe");
    pid_t parent = getpid();
    int tid = worker_tid;
    child = fork();
    if (child < 0) FAIL("fork");
    if (child == 0) {
        if (syscall(SYS_tgkill, parent, tid, SIGUSR1) != 0) _exit(4);
        if (syscall(SYS_tgkill, parent, tid, SIGRTMIN + 5) != 0) _exit(4);
        if (write(sent[1], "x", 1) != 1) _exit(4);
        for (;;) pause();
    }
    char c;
    if (read(sent[0], &c, 1) != 1) FAIL("the child did not send its signals");
    union sigval v = {.sival_int = 0x41};
    if (pthread_sigqueue(w, SIGRTMIN + 4, v) != 0) FAIL("pthread_sigqueue");
    v.sival_int = 0x42;
    if (pthread_sigqueue(w, SIGRTMIN + 4, v) != 0) FAIL("pthread_sigqueue");
    printf("start pid %d child %d\n", getpid(), child);

    for (long n = 1; n <= limit; n++) {
        nap(20);
        printf("tick %ld\n", n);
    }
    go = 1;
    pthread_join(w, NULL);
    kill(child, SIGKILL);
    int st;
    if (waitpid(child, &st, 0) != child || !WIFSIGNALED(st)) FAIL("reaping the child");
    printf("done\n");
    return 0;
}
