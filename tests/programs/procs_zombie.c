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
    /* Both are zombies once two SIGCHLDs have arrived. */
    while (sigchld < 2) pause20();
    for (long n = 1; n <= limit; n++) {
        siginfo_t si = {0};
        if (waitid(P_PID, exited, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != exited) {
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
    if (sigchld != 2) { printf("FAIL: %d SIGCHLD signals, expected 2\n", (int)sigchld); return 3; }
    if (wait(NULL) != -1 || errno != ECHILD) { printf("FAIL: an extra child\n"); return 3; }
    printf("reaped\ndone\n");
    return 0;
}
