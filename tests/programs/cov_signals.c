/* Signals and process-wide kernel state over checkpoint/restart cycles. Usage: cov_signals LIMIT
 * UNBLOCK_AT
 * - SIGUSR1/SIGUSR2 handlers installed at start still run (counted) on every tick;
 * - SIGWINCH (raise: thread-directed) blocked and pending since the start, unblocked at tick
 *   UNBLOCK_AT: its handler runs exactly once; with "procsig", the same for SIGHUP sent with
 *   kill(getpid()) (process-directed) at tick 3 ("procsig0": at the start of main);
 * - SIGUSR2 runs on a sigaltstack (the handler checks the address of a local variable);
 * - alarm(1000) at start: alarm(0) each tick returns 991..1000, never increasing, then re-arms;
 *   at the last tick alarm(1) must deliver SIGALRM;
 * - the checkpoint signal (DMTCP_SIGCKPT, default 62) is invisible: sigaction() on it fails or
 *   its handler never runs, blocking it with sigprocmask/pthread_sigmask does not stop
 *   checkpoints (the test checkpoints anyway), and the reported mask never contains it (this
 *   check is for DMTCP runs only: natively the mask does contain it);
 * - umask 027 stays; with "lowfd", a lowered RLIMIT_NOFILE soft limit (200) stays.
 * Prints "tick N" lines, then "done"; "FAIL tick N: <what>" and exit 3 on a mismatch. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile long usr1, usr2, winch, hup, alrm, ckpt_seen, altstack_bad;
static char *alt;
#define ALT_SIZE (64 * 1024)
static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) {
    (void)s;
    char here;
    if (&here < alt || &here >= alt + ALT_SIZE) altstack_bad++;
    usr2++;
}
static void on_winch(int s) { (void)s; winch++; }
static volatile pid_t main_tid, hup_tid;
static void on_hup(int s) { (void)s; hup_tid = (pid_t)syscall(SYS_gettid); hup++; }
static void on_alrm(int s) { (void)s; alrm++; }
static void on_ckpt(int s) { (void)s; ckpt_seen++; }

static void fail(long n, const char *what) {
    printf("FAIL tick %ld: %s\n", n, what);
    exit(3);
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    long unblock_at = argc > 2 ? atol(argv[2]) : 50;
    int procsig = argc > 3 && strstr(argv[3], "procsig") != NULL;
    int procsig_early = argc > 3 && strstr(argv[3], "procsig0") != NULL;
    int lowfd = argc > 3 && strstr(argv[3], "lowfd") != NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_tid = (pid_t)syscall(SYS_gettid);
    const char *ck = getenv("DMTCP_SIGCKPT");
    int sigckpt = ck ? atoi(ck) : 62;

    alt = malloc(ALT_SIZE);
    stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) fail(0, "sigaltstack");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_alrm;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);

    /* The checkpoint signal: try to take it over and to block it. */
    sa.sa_handler = on_ckpt;
    sa.sa_flags = 0;
    int took = sigaction(sigckpt, &sa, NULL) == 0;
    printf("note: sigaction(%d) %s\n", sigckpt, took ? "returned 0" : "failed");
    sigset_t blk;
    sigemptyset(&blk);
    sigaddset(&blk, SIGWINCH);
    sigaddset(&blk, SIGHUP);
    sigaddset(&blk, sigckpt);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGUSR1);
    sigdelset(&all, SIGUSR2);
    sigdelset(&all, SIGALRM);
    sigdelset(&all, SIGWINCH);
    sigdelset(&all, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    raise(SIGWINCH);
    if (procsig_early) kill(getpid(), SIGHUP);

    alarm(1000);
    umask(027);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t hard = rl.rlim_max;
    if (lowfd) rl.rlim_cur = 200;
    rlim_t soft = rl.rlim_cur;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) fail(0, "setrlimit");

    unsigned last_alarm = 1000;
    for (long n = 1; n <= limit; n++) {
        if (procsig && !procsig_early && n == 3) kill(getpid(), SIGHUP);
        long b1 = usr1, b2 = usr2;
        raise(SIGUSR1);
        raise(SIGUSR2);
        if (usr1 != b1 + 1 || usr1 != n) fail(n, "SIGUSR1 handler");
        if (usr2 != b2 + 1 || usr2 != n) fail(n, "SIGUSR2 handler");
        if (altstack_bad) fail(n, "SIGUSR2 handler not on the sigaltstack");
        stack_t cur;
        if (sigaltstack(NULL, &cur) != 0 || cur.ss_sp != alt || cur.ss_size != ALT_SIZE) fail(n, "sigaltstack setting");

        if (n == unblock_at) {
            sigset_t u;
            sigemptyset(&u);
            sigaddset(&u, SIGWINCH);
            sigaddset(&u, SIGHUP);
            sigprocmask(SIG_UNBLOCK, &u, NULL);
        }
        long want = n >= unblock_at ? 1 : 0;
        if (winch != want) fail(n, "pending thread-directed SIGWINCH not delivered exactly once after unblocking");
        if (hup && hup_tid != main_tid) printf("note: SIGHUP handler ran on tid %d, not the only program thread %d\n", (int)hup_tid, (int)main_tid);
        if (procsig && hup != want) fail(n, "pending process-directed SIGHUP not delivered exactly once after unblocking");
        if (n < unblock_at) {
            sigset_t p;
            sigpending(&p);
            if (!sigismember(&p, SIGWINCH) || (procsig && n >= 3 && !sigismember(&p, SIGHUP))) fail(n, "blocked signals no longer pending");
        }

        unsigned left = alarm(0);
        if (left == 0 || left > last_alarm || left < 990) { printf("note: alarm left %u, before %u\n", left, last_alarm); fail(n, "alarm() remaining time"); }
        last_alarm = left;
        alarm(left);

        if (ckpt_seen) fail(n, "the program saw the checkpoint signal");
        sigset_t m;
        sigprocmask(SIG_BLOCK, NULL, &m);
        if (sigismember(&m, sigckpt)) fail(n, "the signal mask reports the checkpoint signal blocked");
        struct sigaction old;
        if (sigaction(sigckpt, NULL, &old) == 0 && old.sa_handler == on_ckpt && !took) fail(n, "sigaction reports our handler on the checkpoint signal though it failed");

        mode_t um = umask(027);
        if (um != 027) fail(n, "umask");
        struct rlimit r;
        getrlimit(RLIMIT_NOFILE, &r);
        if (r.rlim_cur != soft || r.rlim_max != hard) fail(n, "RLIMIT_NOFILE");

        printf("tick %ld\n", n);
        struct timespec ts = {0, 20 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    alarm(1);
    for (int i = 0; i < 300 && alrm == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (alrm != 1) fail(limit, "alarm(1) after restart did not deliver SIGALRM once");
    if (ckpt_seen) fail(limit, "the program saw the checkpoint signal");
    printf("done\n");
    return 0;
}
