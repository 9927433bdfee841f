/* One file description and one eventfd shared by a parent and its child (inherited over fork):
 * they take turns (a token over two pipes) appending "P%05d\n" / "C%05d\n" through the same
 * fd, opened without O_APPEND, so only the shared offset keeps their records from
 * overwriting each other; each also adds 1 to the eventfd. The parent prints "step K" every
 * 50 turns; at the end it checks the offset and the file ("file ok N"), reads the eventfd
 * ("eventfd 2N", one counter for both) and prints "done". The child also opens the file
 * itself, read-only: that description is its own (not shared), and it reads the records back
 * one per turn at its own offset. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REC 7

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int xread(int fd, void *b, size_t n) {
    ssize_t r;
    do r = read(fd, b, n); while (r < 0 && errno == EINTR);
    return r == (ssize_t)n ? 0 : -1;
}

static int xwrite(int fd, const void *b, size_t n) {
    ssize_t r;
    do r = write(fd, b, n); while (r < 0 && errno == EINTR);
    return r == (ssize_t)n ? 0 : -1;
}

static int turn(int file, int efd, char who, long i) {
    char rec[16];
    snprintf(rec, sizeof rec, "%c%05ld\n", who, i);
    uint64_t one = 1;
    if (xwrite(file, rec, REC) || xwrite(efd, &one, 8)) {
        printf("FAIL %c: write: %s (file flags %#x, eventfd flags %#x)\n", who, strerror(errno),
               fcntl(file, F_GETFL), fcntl(efd, F_GETFL));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: shared_append FILE TURNS\n"); return 2; }
    long n = atol(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int file = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int efd = eventfd(0, 0);
    int p2c[2], c2p[2];
    if (file < 0 || efd < 0 || pipe(p2c) || pipe(c2p)) { perror("setup"); return 2; }
    pid_t pid = fork();
    if (pid == 0) {
        char t;
        int own = open(argv[1], O_RDONLY);
        if (own < 0) { printf("FAIL child: open: %s\n", strerror(errno)); return 3; }
        for (long i = 1; i <= n; i++) {
            if (xread(p2c[0], &t, 1)) { printf("FAIL child: token: %s\n", strerror(errno)); return 3; }
            char got[REC + 1] = {0}, want[32];
            snprintf(want, sizeof want, "%c%05ld\n", i % 2 ? 'P' : 'C', (i + 1) / 2);
            if (xread(own, got, REC) || memcmp(got, want, REC) != 0) {
                printf("CORRUPT child read '%.7s' at record %ld, expected '%.7s' (%s)\n", got, i, want, strerror(errno));
                return 3;
            }
            if (turn(file, efd, 'C', i)) return 3;
            if (xwrite(c2p[1], "c", 1)) return 3;
        }
        return 0;
    }
    char t;
    for (long i = 1; i <= n; i++) {
        if (turn(file, efd, 'P', i)) return 3;
        if (xwrite(p2c[1], "p", 1) || xread(c2p[0], &t, 1)) {
            printf("FAIL parent: token: %s\n", strerror(errno));
            return 3;
        }
        if (i % 50 == 0) printf("step %ld\n", i / 50);
        pause_ms(2);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("FAIL parent: the child failed (status %#x)\n", st);
        return 3;
    }
    off_t off = lseek(file, 0, SEEK_CUR);
    if (off != 2 * REC * n) { printf("FAIL offset %lld, expected %ld\n", (long long)off, 2 * REC * n); return 3; }
    FILE *f = fopen(argv[1], "r");
    char line[32];
    long recs = 0;
    while (f && fgets(line, sizeof line, f)) {
        char want[32];
        snprintf(want, sizeof want, "%c%05ld\n", recs % 2 ? 'C' : 'P', recs / 2 + 1);
        if (strcmp(line, want) != 0) { printf("CORRUPT record %ld: '%s'\n", recs, line); return 3; }
        recs++;
    }
    if (recs != 2 * n) { printf("FAIL %ld records, expected %ld\n", recs, 2 * n); return 3; }
    printf("file ok %ld\n", recs);
    uint64_t count = 0;
    if (xread(efd, &count, 8)) { printf("FAIL eventfd read\n"); return 3; }
    printf("eventfd %llu\n", (unsigned long long)count);
    printf("done\n");
    return 0;
}
