/* The program the checkpoint I/O benchmark checkpoints, and its raw baselines.
 *
 *   memload run  SIZE KIND     fill SIZE bytes (KIND: heap, random, sparse), then loop on
 *                              heartbeats; print every gap longer than 20 ms (the program's
 *                              pause) and, after a gap over 1 s (a restart), the data
 *                              checksum again; SIGUSR1 prints the longest gap since the
 *                              previous SIGUSR1; SIGUSR2 prints the data checksum.
 *   memload dump SIZE KIND FILE  fill, then write the bytes to FILE with write(2) + fsync and
 *                              print the seconds (the "memory to disk" limit).
 *   memload memcpy SIZE        copy SIZE bytes between two prefaulted buffers; print GB/s.
 *
 * Sizes take K/M/G suffixes. The sparse kind reserves 2*SIZE and touches 5 % of it (64 KiB
 * in every 1280 KiB), heap-like. Output lines are "key value ..." for the driver script.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static inline uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static double now_mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static long long now_real_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static size_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    }
    return (size_t)v & ~(size_t)4095;
}

/* Short strings as a program's heap holds them: names, keys, small words. */
static const char *const WORDS[] = {
    "alpha", "beta", "gamma", "delta", "node", "edge", "weight", "value", "key", "index",
    "count", "total", "name", "id", "parent", "child", "left", "right", "buffer", "cell",
    "mesh", "rank", "tag", "flux", "energy", "mass", "x", "y", "z", "temp", "rho", "vel",
};

/* One 4 KiB page of heap-like data. Most pages hold 64-byte objects (a small id and
 * refcount, two pointers into a heap-sized range, a double with a short mantissa or a small
 * integer, a short zero-padded string, flags); some pages are zero runs (freed memory), a
 * few are random bytes (compressed or encrypted buffers, hashes). zstd -1 gets about 3.5x. */
static void fill_heap_page(uint64_t *p) {
    static uint64_t next_id;
    uint64_t r = rnd() % 100;
    if (r < 10) { /* freed memory */
        memset(p, 0, 4096);
        return;
    }
    if (r < 18) { /* incompressible payload */
        for (int i = 0; i < 512; i++) p[i] = rnd();
        return;
    }
    for (int o = 0; o < 64; o++) {
        uint64_t *obj = p + o * 8;
        uint64_t x = rnd();
        uint64_t id = next_id++;
        uint64_t self = 0x55550000a000ULL + id * 64;
        obj[0] = (id & 0xffffff) | ((x & 0x7) << 32); /* id, refcount */
        /* Objects allocated together point to each other; some pointers go far. */
        obj[1] = (x >> 3) % 4 ? self + 64 : 0x55550000a000ULL + (rnd() % (1 << 22)) * 64;
        obj[2] = (x >> 5) % 5 ? self - 64 : 0;
        double d = (double)((x >> 24) % 1000) / 8.0;
        memcpy(&obj[3], &d, 8);
        obj[4] = (x >> 40) % 4 ? (x >> 44) % 100 : 0; /* small int */
        char *name = (char *)&obj[5];
        memset(name, 0, 16);
        const char *w = WORDS[(x >> 50) % 32];
        memcpy(name, w, strlen(w) < 15 ? strlen(w) : 15);
        obj[7] = (x >> 58) & 0x3; /* flags */
    }
}

static void fill(uint8_t *base, size_t len, const char *kind) {
    if (!strcmp(kind, "random")) {
        uint64_t *p = (uint64_t *)base;
        for (size_t i = 0; i < len / 8; i++) p[i] = rnd();
    } else if (!strcmp(kind, "sparse")) {
        /* len is the reservation; 64 KiB of every 1280 KiB is written (5 %). */
        for (size_t off = 0; off + 65536 <= len; off += 1280 * 1024)
            for (size_t pg = 0; pg < 65536; pg += 4096) fill_heap_page((uint64_t *)(base + off + pg));
    } else {
        for (size_t off = 0; off < len; off += 4096) fill_heap_page((uint64_t *)(base + off));
    }
}

/* FNV-1a over 64-bit words: the same value before checkpoint and after restart means the
 * memory came back bit for bit. Untouched pages of the sparse kind read as zero. */
static uint64_t checksum(const uint8_t *base, size_t len, const char *kind) {
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t step = !strcmp(kind, "sparse") ? 1280 * 1024 : len;
    size_t chunk = !strcmp(kind, "sparse") ? 65536 : len;
    for (size_t off = 0; off + chunk <= len; off += step) {
        const uint64_t *p = (const uint64_t *)(base + off);
        for (size_t i = 0; i < chunk / 8; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

static uint8_t *map(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        perror("memload: mmap");
        exit(1);
    }
    return p;
}

static volatile sig_atomic_t want_sum, want_gap;
/* Written on every heartbeat, as a computing program writes its memory. */
static volatile uint64_t scratch[512];
static void on_usr2(int sig) { (void)sig; want_sum = 1; }
static void on_usr1(int sig) { (void)sig; want_gap = 1; }

static int run(size_t size, const char *kind) {
    size_t len = !strcmp(kind, "sparse") ? 2 * size : size;
    uint8_t *base = map(len);
    double t = now_mono();
    fill(base, len, kind);
    printf("filled %.3f s\n", now_mono() - t);
    printf("checksum %016llx\n", (unsigned long long)checksum(base, len, kind));
    printf("pid %d\n", getpid());
    printf("ready\n");
    fflush(stdout);
    signal(SIGUSR2, on_usr2);
    signal(SIGUSR1, on_usr1);

    /* Heartbeats every ~0.2 ms; a gap is time this thread could not run. */
    double last = now_mono(), max_gap = 0;
    long long last_real = now_real_ns();
    for (uint64_t beat = 0;; beat++) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        double n = now_mono();
        long long nr = now_real_ns();
        double gap = n - last;
        if (gap > max_gap) max_gap = gap;
        if (gap > 0.020) {
            /* Wall-clock ends too: after a restart the monotonic clock is another boot's. */
            printf("gap %.6f start_ns %lld end_ns %lld pid %d\n", gap, last_real, nr, getpid());
            fflush(stdout);
            if (gap > 1.0) {
                /* A restart (or a long freeze): prove the memory came back. The driver cannot
                 * signal us when the restart put us in a pid namespace of our own. */
                printf("gap_checksum %016llx end_ns %lld\n",
                       (unsigned long long)checksum(base, len, kind), nr);
                fflush(stdout);
                n = now_mono();
                nr = now_real_ns();
            }
        }
        last = n;
        last_real = nr;
        scratch[beat % 512] = beat;
        if (want_gap) {
            /* The longest gap since the previous SIGUSR1: the driver brackets a checkpoint. */
            want_gap = 0;
            printf("maxgap %.6f\n", max_gap);
            fflush(stdout);
            max_gap = 0;
            last = now_mono();
        }
        if (want_sum) {
            want_sum = 0;
            printf("checksum %016llx\n", (unsigned long long)checksum(base, len, kind));
            fflush(stdout);
        }
    }
    return 0;
}

static int dump(size_t size, const char *kind, const char *path) {
    size_t len = !strcmp(kind, "sparse") ? 2 * size : size;
    uint8_t *base = map(len);
    fill(base, len, kind);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror("memload: open");
        return 1;
    }
    double t = now_mono();
    for (size_t off = 0; off < len;) {
        size_t n = len - off < (1 << 20) ? len - off : (1 << 20);
        ssize_t w = write(fd, base + off, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            perror("memload: write");
            return 1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        perror("memload: fsync");
        return 1;
    }
    printf("dump_s %.6f\n", now_mono() - t);
    printf("checksum %016llx\n", (unsigned long long)checksum(base, len, kind));
    return close(fd);
}

static int bench_memcpy(size_t size) {
    uint8_t *a = map(size), *b = map(size);
    memset(a, 1, size);
    memset(b, 2, size);
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double t = now_mono();
        memcpy(b, a, size);
        double e = now_mono() - t;
        if (e < best) best = e;
    }
    /* A fresh destination pays page faults too, as restart staging does. */
    uint8_t *c = map(size);
    double t = now_mono();
    memcpy(c, a, size);
    double cold = now_mono() - t;
    printf("memcpy_s %.6f\nmemcpy_fresh_s %.6f\n", best, cold);
    return b[size - 1] + c[0] == 2 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "run")) return run(parse_size(argv[2]), argv[3]);
    if (argc >= 5 && !strcmp(argv[1], "dump")) return dump(parse_size(argv[2]), argv[3], argv[4]);
    if (argc >= 3 && !strcmp(argv[1], "memcpy")) return bench_memcpy(parse_size(argv[2]));
    fprintf(stderr, "usage: memload run SIZE KIND | dump SIZE KIND FILE | memcpy SIZE\n");
    return 2;
}
