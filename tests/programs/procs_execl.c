/* A process that replaces itself three times with the list forms of exec — execl, execle
 * (with its own minimal environment, no LD_PRELOAD in it) and execlp — then counts. It must
 * stay the same member of the computation throughout (same identity: the test checks the
 * coordinator's list) and be checkpointable after the last exec. Prints "stage N pid P" and
 * then "count N". Usage: procs_execl [STAGE] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int stage = argc > 1 ? atoi(argv[1]) : 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("stage %d pid %d\n", stage, getpid());
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len < 0) return 2;
    self[len] = 0;
    if (stage == 1) {
        execl(self, "procs_execl", "2", (char *)NULL);
    } else if (stage == 2) {
        char *env[] = {"PATH=/usr/bin:/bin", "STAGE_ENV=kept", NULL};
        execle(self, "procs_execl", "3", (char *)NULL, env);
    } else if (stage == 3) {
        if (!getenv("STAGE_ENV")) { printf("FAIL execle lost the environment\n"); return 3; }
        char dir[4096];
        strcpy(dir, self);
        *strrchr(dir, '/') = 0;
        setenv("PATH", dir, 1);
        execlp("procs_execl", "procs_execl", "4", (char *)NULL);
    } else {
        struct timespec ts = {0, 20 * 1000 * 1000};
        for (long n = 1;; n++) {
            printf("count %ld\n", n);
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        }
    }
    printf("FAIL exec at stage %d: %s\n", stage, strerror(errno));
    return 3;
}
