/* Helpers shared by the C test programs (tests/programs) and the benchmark programs
 * (bench/programs, compiled with -I tests/programs). Header-only: the harness compiles
 * each program from its one source file; a program includes it as "testlib.h" (a quoted
 * include finds it beside the .c file).
 *
 *   say, log_fd         one line "... HOST" appended to a log file in one write
 *   full                send or receive exactly n bytes, or log and exit 5
 *   xorshift_seed/next  the reproducible byte streams the multi-host programs check
 *   listen_loopback     a TCP listener on 127.0.0.1 at a port the kernel picks
 *   connect_retry       connect to a peer that may not listen yet
 *   connect_n           open n connections to one listener */
#ifndef DMTCP_TESTLIB_H
#define DMTCP_TESTLIB_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Where say() writes; the program opens it (O_APPEND: processes may share the file). */
static int log_fd __attribute__((unused)) = -1;

/* Appends FMT with two numbers and this host's name (the FMT's last %s) to log_fd in one
 * write, so lines never interleave and a line says where the process runs now; exit 4 if the
 * write fails. */
static inline void say(const char *fmt, unsigned long long a, unsigned long long b) {
    char line[256];
    struct utsname u;
    uname(&u);
    int len = snprintf(line, sizeof line, fmt, a, b, u.nodename);
    if (write(log_fd, line, (size_t)len) != len) exit(4);
}

/* Sends (sending != 0) or receives exactly n bytes on fd, retrying after signals; on an
 * error or end of stream logs "FAIL send|recv: ERRNO N HOST" and exits 5. */
static inline void full(int fd, void *buf, size_t n, int sending) {
    char *p = buf;
    while (n > 0) {
        ssize_t k = sending ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            say(sending ? "FAIL send: %llu %llu %s\n" : "FAIL recv: %llu %llu %s\n",
                (unsigned long long)errno, (unsigned long long)n);
            exit(5);
        }
        p += k;
        n -= (size_t)k;
    }
}

/* A xorshift64 stream: the same seed s gives the same values on every host and run. */
static inline uint64_t xorshift_seed(uint64_t s) { return s * 0x9E3779B97F4A7C15ull + 1; }

static inline uint64_t xorshift_next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A TCP listener on 127.0.0.1 at a port the kernel picks; *a gets its address (to connect
 * to). Returns the socket, or -1 with errno set. */
static inline int listen_loopback(struct sockaddr_in *a, int backlog) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) return -1;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof *a;
    if (bind(l, (struct sockaddr *)a, sizeof *a) || listen(l, backlog) ||
        getsockname(l, (struct sockaddr *)a, &al)) {
        int e = errno;
        close(l);
        errno = e;
        return -1;
    }
    return l;
}

/* A connection to a, trying every 20 ms up to `tries` times (the peer may not listen yet,
 * e.g. on another host). Returns the socket, or -1 with errno of the last attempt. */
static inline int connect_retry(const struct sockaddr_in *a, int tries) {
    for (int t = 0; t < tries; t++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return -1;
        if (connect(fd, (const struct sockaddr *)a, sizeof *a) == 0) return fd;
        int e = errno;
        close(fd);
        errno = e;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Opens n connections to a (one attempt each) into fds[0..n). Returns 0, or -1 with errno
 * set (the connections opened so far stay open). */
static inline int connect_n(const struct sockaddr_in *a, int *fds, int n) {
    for (int c = 0; c < n; c++) {
        fds[c] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[c] < 0 || connect(fds[c], (const struct sockaddr *)a, sizeof *a)) return -1;
    }
    return 0;
}

#endif
