/* Memory for lazy-restart tests: one large private mapping of SIZE_MB MiB filled with a
 * position-dependent pattern (every 7th page left zero, so the image has holes), then a tick
 * every TICK_MS ms. Each tick verifies one sixteenth of the mapping (so a lazy restart is
 * touched gradually) and prints "tick N slice K". Once the file "restarted" exists in the
 * working directory, the program discards its last MiB (MADV_DONTNEED: it must read as zeros
 * afterwards, not as the saved pattern) and prints "discarded". At tick LIMIT it verifies and
 * writes the whole mapping, prints "done SUM" and exits. "CORRUPT ..." and exit 3 on a mismatch. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static uint64_t pattern(uint64_t i) {
    uint64_t z = i * 0x9e3779b97f4a7c15ULL;
    return (z ^ (z >> 29)) & 0x00ff00ff00ffffffULL; /* compressible, position-dependent */
}

static int zero_page(uint64_t word) { return (word * 8 / PAGE) % 7 == 3; }

static uint64_t *mem;
static uint64_t words, discarded_from = (uint64_t)-1;

static uint64_t expected(uint64_t i) {
    if (i >= discarded_from || zero_page(i)) return 0;
    return pattern(i);
}

static void verify(uint64_t from, uint64_t to, long tick) {
    for (uint64_t i = from; i < to; i++)
        if (mem[i] != expected(i)) {
            printf("CORRUPT tick %ld word %lu: %#lx, expected %#lx\n", tick, (unsigned long)i,
                   (unsigned long)mem[i], (unsigned long)expected(i));
            exit(3);
        }
}

int main(int argc, char **argv) {
    long size_mb = argc > 1 ? atol(argv[1]) : 64;
    long limit = argc > 2 ? atol(argv[2]) : 100;
    long tick_ms = argc > 3 ? atol(argv[3]) : 50;
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t len = (size_t)size_mb << 20;
    mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { printf("FAIL mmap\n"); return 2; }
    words = len / 8;
    for (uint64_t i = 0; i < words; i++)
        if (!zero_page(i)) mem[i] = pattern(i);
    struct timespec ts = {tick_ms / 1000, (tick_ms % 1000) * 1000000L};
    for (long n = 1; n <= limit; n++) {
        if (discarded_from == (uint64_t)-1 && access("restarted", F_OK) == 0) {
            discarded_from = words - (1 << 20) / 8;
            madvise((char *)mem + len - (1 << 20), 1 << 20, MADV_DONTNEED);
            verify(discarded_from, words, n);
            printf("discarded\n");
        }
        long k = n % 16;
        verify(words / 16 * k, words / 16 * (k + 1), n);
        printf("tick %ld slice %ld\n", n, k);
        nanosleep(&ts, NULL);
    }
    verify(0, words, limit);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < words; i++) {
        sum += mem[i] * (i | 1);
        mem[i] = ~mem[i];
    }
    for (uint64_t i = 0; i < words; i++)
        if (mem[i] != ~expected(i)) { printf("CORRUPT after write, word %lu\n", (unsigned long)i); return 3; }
    printf("done %lu\n", (unsigned long)sum);
    return 0;
}
