/* An array of MIB MiB of random bytes of which only a "hot" 5 % of the pages changes (all of
 * it rewritten on every tick), for incremental checkpoints. Hot pages are the first 5 % of the
 * array, or with "scatter" every 20th page (so every 1 MiB frame changes). Every tick first
 * checks the whole array: the cold pages against their checksum taken at start, the hot ones
 * against the values of the previous tick, and prints "CORRUPT ..." on any difference; then
 * prints "tick <n> sum <cold checksum>". The array is 2 MiB-aligned. With INCR_TIMING=1 it
 * also prints "rewrite <n> <ms>": the time of the hot pages' rewrite (the first write to a
 * page after a checkpoint may fault when dirty tracking write-protects it).
 * Usage: incr_array MIB [scatter] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_WORDS 512

static size_t pages;
static int scatter;

static int is_hot(size_t page) { return scatter ? page % 20 == 0 : page < pages / 20; }

static uint64_t cold_checksum(const uint64_t *w) {
    uint64_t h = 1469598103934665603ull;
    for (size_t p = 0; p < pages; p++) {
        if (is_hot(p)) continue;
        for (size_t i = p * PAGE_WORDS; i < (p + 1) * PAGE_WORDS; i++)
            h = (h ^ w[i]) * 1099511628211ull;
    }
    return h;
}

static uint64_t hot_word(size_t i, unsigned long tick) {
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ tick * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    return x * 0x94d049bb133111ebull;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 128;
    scatter = argc > 2 && strcmp(argv[2], "scatter") == 0;
    pages = (mib << 20) / 4096;
    size_t words = pages * PAGE_WORDS;
    uint64_t *buf;
    if (posix_memalign((void **)&buf, 2 << 20, words * 8)) return 1;
    uint64_t rng = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < words; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        buf[i] = rng;
    }
    uint64_t cold = cold_checksum(buf);
    for (size_t p = 0; p < pages; p++)
        if (is_hot(p))
            for (size_t i = p * PAGE_WORDS; i < (p + 1) * PAGE_WORDS; i++) buf[i] = hot_word(i, 0);
    int timing = getenv("INCR_TIMING") && strcmp(getenv("INCR_TIMING"), "1") == 0;
    for (unsigned long n = 1;; n++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, 0);
        if (cold_checksum(buf) != cold) {
            printf("CORRUPT cold part at tick %lu\n", n);
            fflush(stdout);
            return 2;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t p = 0; p < pages; p++) {
            if (!is_hot(p)) continue;
            for (size_t i = p * PAGE_WORDS; i < (p + 1) * PAGE_WORDS; i++) {
                if (buf[i] != hot_word(i, n - 1)) {
                    printf("CORRUPT hot word %zu at tick %lu\n", i, n);
                    fflush(stdout);
                    return 2;
                }
                buf[i] = hot_word(i, n);
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (timing)
            printf("rewrite %lu %.3f\n", n,
                   (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        printf("tick %lu sum %llx\n", n, (unsigned long long)cold);
        fflush(stdout);
    }
}
