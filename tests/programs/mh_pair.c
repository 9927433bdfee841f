/* A client/server pair for the multi-host tests.
 *   mh_pair server PORT OUT          accepts one client on PORT (any address)
 *   mh_pair client ADDR PORT OUT     connects to ADDR:PORT
 * Request s carries 1 + (s * 7919) % 1 MiB bytes that depend on s; the server checks every
 * byte and answers with the same length of bytes that depend on s + 1000000 and their word
 * sum; the client checks both. Each side appends "s SUM HOST" per request to OUT (HOST: where
 * it runs now); damage is a "CORRUPT ..." line and exit 3. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define MAX (1u << 20)

struct head {
    uint64_t seq, len, sum;
};

static void fill(unsigned char *b, size_t n, uint64_t s) {
    uint64_t x = xorshift_seed(s);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(xorshift_next(&x) >> 24);
}

static uint64_t sum(const unsigned char *b, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void check(const unsigned char *got, unsigned char *want, size_t n, uint64_t s) {
    fill(want, n, s);
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            say("CORRUPT byte %llu of %llu %s\n", (unsigned long long)i, (unsigned long long)s);
            exit(3);
        }
    }
}

int main(int argc, char **argv) {
    int server = argc == 4 && strcmp(argv[1], "server") == 0;
    if (!server && !(argc == 5 && strcmp(argv[1], "client") == 0)) {
        fprintf(stderr, "usage: mh_pair server PORT OUT | mh_pair client ADDR PORT OUT\n");
        return 2;
    }
    log_fd = open(argv[argc - 1], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log_fd < 0) {
        perror(argv[argc - 1]);
        return 2;
    }
    unsigned char *buf = malloc(MAX), *want = malloc(MAX);
    int fd;
    if (server) {
        int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
        if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) {
            perror("listen");
            return 2;
        }
        fd = accept(l, NULL, NULL);
        close(l);
        for (;;) {
            struct head h;
            full(fd, &h, sizeof h, 0);
            if (h.len == 0 || h.len > MAX) {
                say("CORRUPT length %llu of %llu %s\n", (unsigned long long)h.len,
                    (unsigned long long)h.seq);
                return 3;
            }
            full(fd, buf, h.len, 0);
            check(buf, want, h.len, h.seq);
            fill(buf, h.len, h.seq + 1000000);
            h.sum = sum(buf, h.len);
            say("%llu %llu %s\n", (unsigned long long)h.seq, (unsigned long long)h.sum);
            full(fd, &h, sizeof h, 1);
            full(fd, buf, h.len, 1);
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &a.sin_addr);
    fd = connect_retry(&a, 1000);
    if (fd < 0) {
        perror("connect");
        return 2;
    }
    for (uint64_t s = 1;; s++) {
        struct head h = {s, 1 + (s * 7919) % MAX, 0};
        fill(buf, h.len, s);
        full(fd, &h, sizeof h, 1);
        full(fd, buf, h.len, 1);
        struct head r;
        full(fd, &r, sizeof r, 0);
        if (r.seq != s || r.len != h.len) {
            say("CORRUPT reply %llu to %llu %s\n", (unsigned long long)r.seq,
                (unsigned long long)s);
            return 3;
        }
        full(fd, buf, r.len, 0);
        check(buf, want, r.len, s + 1000000);
        if (sum(buf, r.len) != r.sum) {
            say("CORRUPT sum %llu of %llu %s\n", (unsigned long long)r.sum,
                (unsigned long long)s);
            return 3;
        }
        say("%llu %llu %s\n", (unsigned long long)s, (unsigned long long)r.sum);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
}
