/* Zombies across a restart: two children end at once (one exits with 7, one is killed by
 * SIGTERM) and stay unreaped while the parent ticks; a SIGCHLD handler counts their signals.
 * At the end the parent reaps both by pid and checks their statuses, and that no SIGCHLD
 * arrived beyond the two real ones. Prints "tick N", then "reaped" and "done".
 * Usage: procs_zombie LIMIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t sigchld;
static void on_chld(int s) { (void)s; sigchld++; }

/* The child is a zombie (waitable, left waitable). Any SIGCHLD for it is handled by now: a
 * pending signal is delivered on the way back from this very syscall. */
static int zombie(pid_t pid) {
    siginfo_t si = {0};
    return waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

static void pause20(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    pid_t exited = fork();
    if (exited == 0) _exit(7);
    pid_t killed = fork();
    if (killed == 0) { pause(); _exit(1); }
    kill(killed, SIGTERM);
    while (!zombie(exited) || !zombie(killed)) pause20();
    int before = sigchld;
    if (before < 1 || before > 2) { printf("FAIL: %d SIGCHLD signals for 2 children\n", before); return 3; }
    for (long n = 1; n <= limit; n++) {
        if (!zombie(exited)) {
            printf("FAIL tick %ld: the exited child is not waitable (errno %d)\n", n, errno);
            return 3;
        }
        printf("tick %ld\n", n);
        pause20();
    }
    int s1, s2;
    if (waitpid(exited, &s1, 0) != exited || !WIFEXITED(s1) || WEXITSTATUS(s1) != 7) {
        printf("FAIL: the exited child came back as %d\n", s1);
        return 3;
    }
    if (waitpid(killed, &s2, 0) != killed || !WIFSIGNALED(s2) || WTERMSIG(s2) != SIGTERM) {
        printf("FAIL: the killed child came back as %d\n", s2);
        return 3;
    }
    if (sigchld != before) {
        printf("FAIL: %d SIGCHLD signals, %d before the checkpoints\n", (int)sigchld, before);
        return 3;
    }
    if (wait(NULL) != -1 || errno != ECHILD) { printf("FAIL: an extra child\n"); return 3; }
    printf("reaped\ndone\n");
    return 0;
}
