/* A pipe shared by a parent and its child, checkpointed with data in flight: the parent
 * writes the records "%08ld\n" for 1..limit into the pipe as fast as it can (so the pipe is
 * full at every checkpoint), the child reads them slowly and checks that every number comes
 * exactly once, in order. The child prints "recv K" after every 100 records, then
 * "child done N" at EOF; the parent prints "done" after reaping a child that passed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REC 9

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int child(int rd, long limit) {
    char rec[REC + 1];
    long expect = 1;
    for (;;) {
        size_t got = 0;
        while (got < REC) {
            ssize_t n = read(rd, rec + got, REC - got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) { printf("FAIL child: read: %s\n", strerror(errno)); return 3; }
            if (n == 0) break;
            got += (size_t)n;
        }
        if (got == 0) break;
        rec[REC] = 0;
        char *end;
        long v = strtol(rec, &end, 10);
        if (got != REC || *end != '\n' || v != expect) {
            printf("CORRUPT child: got record '%.*s' (%zu bytes), expected %ld\n", (int)got, rec, got, expect);
            return 3;
        }
        if (expect % 100 == 0) printf("recv %ld\n", expect / 100);
        expect++;
        pause_ms(1);
    }
    if (expect - 1 != limit) { printf("FAIL child: EOF after %ld records of %ld\n", expect - 1, limit); return 3; }
    printf("child done %ld\n", expect - 1);
    return 0;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 10000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return 2; }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        return child(p[0], limit);
    }
    close(p[0]);
    for (long n = 1; n <= limit; n++) {
        char rec[32];
        snprintf(rec, sizeof rec, "%08ld\n", n % 100000000);
        size_t done = 0;
        while (done < REC) {
            ssize_t w = write(p[1], rec + done, REC - done);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { printf("FAIL parent: write: %s\n", strerror(errno)); return 3; }
            done += (size_t)w;
        }
    }
    close(p[1]);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("FAIL parent: the child failed (status %#x)\n", st);
        return 3;
    }
    printf("done\n");
    return 0;
}
