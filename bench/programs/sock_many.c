/* Many TCP connections between two processes, for bench/sockets.sh:
 *
 *   sock_many N BYTES [open-only]
 *
 * The parent listens on 127.0.0.1, the child opens N connections to it; the parent prints
 * "opened N connections in MS ms" (from before the fork to the last accept). Each side then
 * writes BYTES bytes into every connection without reading (data in flight both ways) and
 * prints "ready". With "open-only" both exit after opening (the baseline). Otherwise both
 * wait for a file named "go" in the current directory, then read and check BYTES bytes on
 * every connection, print "verified N" ("child verified N"), and exit. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h" /* tests/programs/testlib.h: cc -I tests/programs */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static unsigned char pat(long i) { return (unsigned char)(i * 7 + 3); }

static int exchange(int *fds, int n, long bytes, const char *who) {
    unsigned char *buf = malloc((size_t)bytes);
    for (long i = 0; i < bytes; i++) buf[i] = pat(i);
    for (int c = 0; c < n; c++) {
        if (send(fds[c], buf, (size_t)bytes, MSG_NOSIGNAL) != bytes) {
            printf("FAIL %s: send: %s\n", who, strerror(errno));
            return 3;
        }
    }
    printf("%sready\n", who[0] == 'c' ? "child " : "");
    while (access("go", F_OK) != 0) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int c = 0; c < n; c++) {
        long got = 0;
        while (got < bytes) {
            ssize_t r = recv(fds[c], buf + got, (size_t)(bytes - got), 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) { printf("FAIL %s: connection %d: %s\n", who, c, r ? strerror(errno) : "EOF"); return 3; }
            got += r;
        }
        for (long i = 0; i < bytes; i++)
            if (buf[i] != pat(i)) { printf("CORRUPT %s: connection %d byte %ld\n", who, c, i); return 3; }
    }
    printf("%sverified %d\n", who[0] == 'c' ? "child " : "", n);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int n = atoi(argv[1]);
    long bytes = atol(argv[2]);
    int open_only = argc > 3;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int *fds = calloc((size_t)n + 1, sizeof(int));
    double t0 = now_ms();
    struct sockaddr_in a;
    int l = listen_loopback(&a, 4096);
    if (l < 0) {
        perror("listen");
        return 2;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(l);
        if (connect_n(&a, fds, n)) { printf("FAIL child: connect: %s\n", strerror(errno)); return 3; }
        return open_only ? 0 : exchange(fds, n, bytes, "child");
    }
    for (int c = 0; c < n; c++) {
        fds[c] = accept(l, NULL, NULL);
        if (fds[c] < 0) { printf("FAIL parent: accept: %s\n", strerror(errno)); return 3; }
    }
    close(l);
    printf("opened %d connections in %.1f ms\n", n, now_ms() - t0);
    int rc = open_only ? 0 : exchange(fds, n, bytes, "parent");
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) rc = 3;
    if (rc == 0 && !open_only) printf("done\n");
    return rc;
}
