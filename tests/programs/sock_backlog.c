/* Connections waiting in a listen backlog at checkpoint:
 *
 *   sock_backlog TICKS
 *
 * The parent listens on 127.0.0.1; the child opens 3 connections and sends on each 2000
 * numbered bytes ("<conn>:<i>" records). The parent does not accept them: it prints "tick N"
 * every 50 ms until N = TICKS, then accepts the 3 connections, checks every byte and replies
 * "ok <conn>", which the child checks ("child ok <conn>"). Checkpoints taken during the ticks
 * find the connections waiting, un-accepted, with their bytes. */
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

#include "testlib.h"

#define CONNS 3
#define RECS 200 /* records of 10 bytes: "%03d:%05d\n" */

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv) {
    long ticks = argc > 1 ? atol(argv[1]) : 40;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sockaddr_in a;
    int l = listen_loopback(&a, 8);
    if (l < 0) {
        perror("listen");
        return 2;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(l);
        int fds[CONNS];
        if (connect_n(&a, fds, CONNS)) { printf("FAIL child: connect: %s\n", strerror(errno)); return 3; }
        for (int c = 0; c < CONNS; c++)
            for (int i = 0; i < RECS; i++) dprintf(fds[c], "%03d:%05d\n", c, i);
        printf("child sent\n");
        for (int c = 0; c < CONNS; c++) {
            char buf[16] = {0};
            if (read_full(fds[c], buf, 6) || strncmp(buf, "ok ", 3) != 0) {
                printf("FAIL child: connection %d: reply '%s' (%s)\n", c, buf, strerror(errno));
                return 3;
            }
            printf("child ok %d\n", atoi(buf + 3));
        }
        return 0;
    }
    for (long t = 1; t <= ticks; t++) {
        printf("tick %ld\n", t);
        pause_ms(50);
    }
    for (int k = 0; k < CONNS; k++) {
        int s = accept(l, NULL, NULL);
        char rec[11];
        int conn = -1;
        for (int i = 0; i < RECS; i++) {
            if (read_full(s, rec, 10)) { printf("FAIL parent: short connection after %d records\n", i); return 3; }
            int c, n;
            if (sscanf(rec, "%d:%d", &c, &n) != 2 || n != i || (conn >= 0 && c != conn)) {
                printf("CORRUPT parent: record '%.9s', expected %d\n", rec, i);
                return 3;
            }
            conn = c;
        }
        dprintf(s, "ok %02d\n", conn);
        close(s);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) { printf("FAIL the child failed\n"); return 3; }
    printf("done\n");
    return 0;
}
