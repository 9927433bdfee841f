/* Holds MIB MiB of heap-like data (small counters, repeated strings, zero pages, random
 * pages) and checks it all the time: prints "sum <x>" once filled, then "tick <n> sum <x>"
 * every 200 ms with the checksum recomputed over the whole buffer. A restart that brings
 * back any byte wrong changes the sum. Usage: ckpt_bigmem MIB */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t checksum(const uint64_t *w, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 32;
    size_t len = mib << 20, page = 4096;
    uint64_t *buf = malloc(len);
    if (!buf) return 1;
    for (size_t p = 0; p < len / page; p++) {
        uint64_t *w = buf + p * page / 8;
        uint64_t kind = next() % 10;
        for (size_t i = 0; i < page / 8; i++) {
            if (kind == 0) w[i] = 0;                              /* zero page */
            else if (kind == 1) w[i] = next();                    /* random page */
            else if (i % 8 == 0) w[i] = p * 512 + i;              /* object ids */
            else if (i % 8 < 4) w[i] = 0x6f6c6c6568ull + (i & 3); /* short strings */
            else w[i] = next() % 100;                             /* small numbers */
        }
    }
    printf("sum %llx\n", (unsigned long long)checksum(buf, len / 8));
    fflush(stdout);
    for (unsigned long n = 1;; n++) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, 0);
        printf("tick %lu sum %llx\n", n, (unsigned long long)checksum(buf, len / 8));
        fflush(stdout);
    }
}
