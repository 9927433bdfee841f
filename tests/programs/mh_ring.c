/* A token ring for the multi-host tests. Usage: mh_ring K N PORT NEXT_ADDR OUT [BYTES]
 * Process K of N listens on PORT+K (any address) and connects to process K+1 (mod N) at
 * NEXT_ADDR:PORT+(K+1)%N, so each process can run on its own host. Process 0 sends the first
 * token. A token is round r, value v and BYTES (default 1 MiB) of data that depend on r; the
 * receiver checks every byte ("CORRUPT ..." and exit 3 otherwise), appends "r v HOST" to OUT
 * (HOST: where it runs now) and sends round r+1 with v' = v * 6364136223846793005 + r + K,
 * wrapping, so the values prove that no hop was lost, repeated or reordered. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "testlib.h"

struct token {
    uint64_t round, value, len;
};

/* Bytes of round r: xorshift64 from a seed that depends on r. */
static void fill(uint64_t *w, size_t words, uint64_t r) {
    uint64_t x = xorshift_seed(r);
    for (size_t i = 0; i < words; i++) w[i] = xorshift_next(&x);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: mh_ring K N PORT NEXT_ADDR OUT [BYTES]\n");
        return 2;
    }
    int k = atoi(argv[1]), n = atoi(argv[2]), port = atoi(argv[3]);
    size_t bytes = argc > 6 ? (size_t)atol(argv[6]) : (1u << 20);
    size_t words = bytes / 8;
    log_fd = open(argv[5], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log_fd < 0) {
        perror(argv[5]);
        return 2;
    }
    uint64_t *data = malloc(words * 8), *want = malloc(words * 8);

    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(port + k)};
    if (bind(l, (struct sockaddr *)&me, sizeof me) || listen(l, 1)) {
        perror("listen");
        return 2;
    }
    struct sockaddr_in next = {.sin_family = AF_INET, .sin_port = htons(port + (k + 1) % n)};
    inet_pton(AF_INET, argv[4], &next.sin_addr);
    int out = connect_retry(&next, 1000);
    if (out < 0) {
        perror("connect");
        return 2;
    }
    int in = accept(l, NULL, NULL);
    close(l);

    struct token t = {1, 1, words * 8};
    if (k == 0) {
        fill(data, words, t.round);
        full(out, &t, sizeof t, 1);
        full(out, data, t.len, 1);
    }
    for (;;) {
        full(in, &t, sizeof t, 0);
        if (t.len != words * 8) {
            say("CORRUPT length %llu at round %llu %s\n", (unsigned long long)t.len,
                (unsigned long long)t.round);
            return 3;
        }
        full(in, data, t.len, 0);
        fill(want, words, t.round);
        for (size_t i = 0; i < words; i++) {
            if (data[i] != want[i]) {
                say("CORRUPT word %llu of round %llu %s\n", (unsigned long long)i,
                    (unsigned long long)t.round);
                return 3;
            }
        }
        say("%llu %llu %s\n", (unsigned long long)t.round, (unsigned long long)t.value);
        t.value = t.value * 6364136223846793005ull + t.round + (uint64_t)k;
        t.round++;
        fill(data, words, t.round);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        full(out, &t, sizeof t, 1);
        full(out, data, t.len, 1);
    }
}
