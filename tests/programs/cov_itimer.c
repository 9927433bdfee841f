/* A periodic ITIMER_REAL (5 ms) whose SIGALRM is blocked from tick 2 to tick UNBLOCK_AT: the
 * expired timer waits for its signal to be taken (getitimer reports a zero value with a
 * non-zero interval), which is how a checkpoint taken meanwhile sees it. After unblocking, the
 * pending SIGALRM must be delivered and the timer must go on ticking (the count grows in every
 * later 10-tick window). Usage: cov_itimer LIMIT UNBLOCK_AT. Prints "tick N alrm A", then "done";
 * "FAIL tick N: <what>" and exit 3 on a mismatch. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static volatile long alrm;
static void on_alrm(int s) { (void)s; alrm++; }

static void fail(long n, const char *what) {
    printf("FAIL tick %ld: %s\n", n, what);
    exit(3);
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 60;
    long unblock_at = argc > 2 ? atol(argv[2]) : 40;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_alrm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGALRM);
    struct itimerval it = {{0, 5000}, {0, 5000}};
    setitimer(ITIMER_REAL, &it, NULL);
    long mark = 0;
    for (long n = 1; n <= limit; n++) {
        if (n == 2) sigprocmask(SIG_BLOCK, &m, NULL);
        if (n == unblock_at) {
            long before = alrm;
            sigprocmask(SIG_UNBLOCK, &m, NULL);
            if (alrm != before + 1) fail(n, "the pending SIGALRM was not delivered at unblocking");
            mark = alrm;
        }
        if (n > unblock_at && (n - unblock_at) % 10 == 0) {
            if (alrm <= mark) fail(n, "the periodic ITIMER_REAL stopped");
            mark = alrm;
        }
        printf("tick %ld alrm %ld\n", n, alrm);
        struct timespec ts = {0, 20 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    printf("done\n");
    return 0;
}
