/* Keeps /proc/self/status open through checkpoints and restarts (as programs that read their
 * own /proc files do): every tick it reads the file from the start through the same fd and
 * fails unless it still describes this process ("Name:\tproc_self_fd"). After a restart with
 * virtual ids the process has another real pid, so the fd must have been reopened as
 * /proc/self/status, not /proc/<old pid>/status. Prints "tick N" every 20 ms, "done" at LIMIT. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) {
        perror("open /proc/self/status");
        return 2;
    }
    for (long n = 1; n <= limit; n++) {
        char buf[64] = {0};
        ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
        if (got <= 0 || strncmp(buf, "Name:\tproc_self_fd", 18) != 0) {
            printf("FAIL tick %ld: /proc/self/status reads '%.20s'\n", n, got > 0 ? buf : "");
            return 1;
        }
        printf("tick %ld\n", n);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, 0);
    }
    printf("done\n");
    return 0;
}
