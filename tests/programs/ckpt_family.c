/* A parent and its child, checkpointed and restarted together: the child checks that its
 * parent is still its parent (getppid), the parent that the child is still its child
 * (waitpid WNOHANG returns 0, not ECHILD), that both keep their session and process group,
 * and at the end the parent kills and reaps the child. Parent prints "tick N", the child
 * "child N". */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pause20(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t parent = getpid();
    pid_t sid = getsid(0), pgid = getpgid(0);
    pid_t child = fork();
    if (child == 0) {
        for (long n = 1;; n++) {
            if (getppid() != parent) { printf("FAIL child %ld: parent %d, was %d\n", n, getppid(), parent); return 3; }
            if (getsid(0) != sid || getpgid(0) != pgid) { printf("FAIL child %ld: session/group\n", n); return 3; }
            printf("child %ld\n", n);
            pause20();
        }
    }
    for (long n = 1; n <= limit; n++) {
        int st;
        pid_t w = waitpid(child, &st, WNOHANG);
        if (w != 0) { printf("FAIL tick %ld: waitpid gave %d (errno %d)\n", n, w, errno); return 3; }
        if (getsid(0) != sid || getpgid(0) != pgid) { printf("FAIL tick %ld: session/group\n", n); return 3; }
        printf("tick %ld\n", n);
        pause20();
    }
    kill(child, SIGTERM);
    int st;
    if (waitpid(child, &st, 0) != child || !WIFSIGNALED(st)) { printf("FAIL: reaping the child\n"); return 3; }
    printf("done\n");
    return 0;
}
