/* Bytes left unread by a peer that is gone:
 *
 *   sock_orphan MODE TICKS      (MODE: unix or tcp)
 *
 * A child writes 500 numbered records ("%05d\n") into a socket to its parent (a socketpair,
 * or a TCP connection to the parent's listener) and exits. The parent reaps it, then prints
 * "tick N" every 50 ms until N = TICKS, and only then reads: every record once, in order,
 * then end-of-file, and prints "got 500" and "done". */
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

#define RECS 500

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int tcp = !strcmp(argv[1], "tcp");
    long ticks = atol(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int sv[2], l = -1;
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    if (tcp) {
        l = socket(AF_INET, SOCK_STREAM, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al)) return 2;
    } else if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        return 2;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int fd = sv[1];
        if (tcp) {
            fd = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(fd, (struct sockaddr *)&a, sizeof a)) return 3;
        } else {
            close(sv[0]);
        }
        /* One write: thousands of tiny UNIX messages would exceed the send buffer. */
        static char all[RECS * 6 + 1];
        for (int i = 1; i <= RECS; i++) snprintf(all + (i - 1) * 6, 7, "%05d\n", i);
        size_t done = 0;
        while (done < RECS * 6) {
            ssize_t w = write(fd, all + done, RECS * 6 - done);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return 3;
            done += (size_t)w;
        }
        return 0;
    }
    int fd = sv[0];
    if (tcp) {
        fd = accept(l, NULL, NULL);
        close(l);
    } else {
        close(sv[1]);
    }
    int st;
    waitpid(pid, &st, 0);
    for (long t = 1; t <= ticks; t++) {
        printf("tick %ld\n", t);
        pause_ms(50);
    }
    char rec[7];
    for (int i = 1; i <= RECS; i++) {
        size_t got = 0;
        while (got < 6) {
            ssize_t r = read(fd, rec + got, 6 - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) { printf("FAIL record %d: %s\n", i, r ? strerror(errno) : "end of file"); return 3; }
            got += (size_t)r;
        }
        if (atoi(rec) != i) { printf("CORRUPT record %d: '%.5s'\n", i, rec); return 3; }
    }
    char x;
    ssize_t r = read(fd, &x, 1);
    if (r != 0) { printf("FAIL no end of file after the records (%zd, %s)\n", r, strerror(errno)); return 3; }
    printf("got %d\ndone\n", RECS);
    return 0;
}
