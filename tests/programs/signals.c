/* Checks that the program's own signal handlers still run: reports SIGUSR1 and SIGUSR2 and
 * exits with code 7 on SIGTERM. Output lines: "ready", "usr1 <n>", "usr2 <n>", "term". */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2, term;

static void on_signal(int sig) {
    if (sig == SIGUSR1) usr1++;
    if (sig == SIGUSR2) usr2++;
    if (sig == SIGTERM) term = 1;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    printf("ready\n");
    fflush(stdout);
    int seen1 = 0, seen2 = 0;
    for (;;) {
        /* Atomically unblock and wait, so no signal slips between the check and the wait. */
        sigsuspend(&old);
        while (seen1 < usr1) printf("usr1 %d\n", ++seen1);
        while (seen2 < usr2) printf("usr2 %d\n", ++seen2);
        fflush(stdout);
        if (term) {
            printf("term\n");
            fflush(stdout);
            return 7;
        }
    }
}
