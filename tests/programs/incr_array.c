/* An array of MIB MiB of random bytes of which only a "hot" 5 % changes (rewritten on every
 * tick), for incremental checkpoints. Every tick first checks the whole array: the cold 95 %
 * against its checksum taken at start, the hot part against the values of the previous tick,
 * and prints "CORRUPT ..." on any difference; then prints "tick <n> sum <cold checksum>".
 * The array is 2 MiB-aligned so the hot part covers whole 1 MiB frames. Usage: incr_array MIB */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t checksum(const uint64_t *w, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 1099511628211ull;
    return h;
}

static uint64_t hot_word(size_t i, unsigned long tick) {
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ tick * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    return x * 0x94d049bb133111ebull;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 128;
    size_t words = (mib << 20) / 8, hot = words / 20;
    uint64_t *buf;
    if (posix_memalign((void **)&buf, 2 << 20, words * 8)) return 1;
    uint64_t rng = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < words; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        buf[i] = rng;
    }
    uint64_t cold = checksum(buf + hot, words - hot);
    for (size_t i = 0; i < hot; i++) buf[i] = hot_word(i, 0);
    for (unsigned long n = 1;; n++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, 0);
        if (checksum(buf + hot, words - hot) != cold) {
            printf("CORRUPT cold part at tick %lu\n", n);
            fflush(stdout);
            return 2;
        }
        for (size_t i = 0; i < hot; i++) {
            if (buf[i] != hot_word(i, n - 1)) {
                printf("CORRUPT hot word %zu at tick %lu\n", i, n);
                fflush(stdout);
                return 2;
            }
            buf[i] = hot_word(i, n);
        }
        printf("tick %lu sum %llx\n", n, (unsigned long long)cold);
        fflush(stdout);
    }
}
