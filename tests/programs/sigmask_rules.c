/* The signal-mask wrappers keep glibc's rules and the runtime's: run natively and under
 * dmtcp_launch, the same answers. Prints one "ok <what>" line per check that holds, "FAIL
 * <what>" otherwise, then "done" (exit 0) or exit 3.
 * - SIG_BLOCK of {SIGUSR1, 32, 33, SIGCKPT}: SIGUSR1 is blocked; glibc's internal SIGCANCEL
 *   (32) and SIGSETXID (33) never are; under the runtime the checkpoint signal never is;
 * - the old mask comes back, SIG_UNBLOCK and SIG_SETMASK do what they say, a null set only
 *   reads;
 * - a bad `how`: pthread_sigmask returns EINVAL, sigprocmask returns -1 with errno EINVAL,
 *   and the mask is unchanged. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static int failed;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failed = 1;
}

static sigset_t current(void) {
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return m;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *env = getenv("DMTCP_SIGCKPT");
    int ckpt = env ? atoi(env) : 62;
    int under_runtime = getenv("DMTCP_COORD_PORT") != NULL;

    sigset_t s, old, m;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, 32);
    sigaddset(&s, 33);
    sigaddset(&s, ckpt);
    check(pthread_sigmask(SIG_BLOCK, &s, &old) == 0, "pthread_sigmask block returns 0");
    m = current();
    check(sigismember(&m, SIGUSR1) == 1, "SIGUSR1 blocked");
    check(sigismember(&m, 32) == 0 && sigismember(&m, 33) == 0, "glibc's 32 and 33 never blocked");
    if (under_runtime) check(sigismember(&m, ckpt) == 0, "checkpoint signal never blocked");
    check(sigismember(&old, SIGUSR1) == 0, "old mask had SIGUSR1 open");

    sigset_t u;
    sigemptyset(&u);
    sigaddset(&u, SIGUSR1);
    check(sigprocmask(SIG_UNBLOCK, &u, &old) == 0 && sigismember(&old, SIGUSR1) == 1,
          "sigprocmask unblock returns 0 and the old mask");
    m = current();
    check(sigismember(&m, SIGUSR1) == 0, "SIGUSR1 open again");

    sigset_t full;
    sigfillset(&full);
    check(sigprocmask(SIG_SETMASK, &full, NULL) == 0, "sigprocmask setmask returns 0");
    m = current();
    check(sigismember(&m, SIGTERM) == 1 && sigismember(&m, SIGRTMAX) == 1, "setmask blocks all");
    check(sigismember(&m, 32) == 0 && sigismember(&m, 33) == 0, "setmask leaves 32 and 33 open");
    if (under_runtime) check(sigismember(&m, ckpt) == 0, "setmask leaves the checkpoint signal open");

    check(pthread_sigmask(12345, &u, NULL) == EINVAL, "pthread_sigmask bad how: EINVAL");
    errno = 0;
    check(sigprocmask(12345, &u, NULL) == -1 && errno == EINVAL, "sigprocmask bad how: -1, EINVAL");
    sigset_t after = current();
    check(sigismember(&after, SIGTERM) == 1, "a failed call leaves the mask");

    sigemptyset(&s);
    check(pthread_sigmask(SIG_SETMASK, &s, NULL) == 0, "setmask empty");
    m = current();
    check(sigismember(&m, SIGTERM) == 0, "all open again");
    puts(failed ? "failed" : "done");
    return failed ? 3 : 0;
}
