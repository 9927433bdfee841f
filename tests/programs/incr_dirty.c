/* Memory that changes in every way dirty tracking must see, for incremental checkpoints.
 * Every 100 ms step s writes two pages of every 1 MiB frame f with f % 24 == s % 24 (the
 * other frames stay clean), in these regions: an mmap'd array, a static (.bss) array, one
 * region mapped only at step 8, and one moved by mremap at step 10. Pages of odd frames are
 * written by the kernel: read(2) from a pipe straight into the page. Each page's content is
 * a function of (region, page, the step that last wrote it), so before every step the whole
 * memory is checked against what it must hold; "CORRUPT ..." and exit 2 on a difference
 * (after a restart: a write the checkpoint missed). Prints "tick <s>" after each step.
 * With "fork", a child forked at start does the same on its copies and prints "ctick <s>".
 * (No MAP_SHARED region: a forked image writer reads shared memory live, while the other
 * process already runs on, so such a region is not a snapshot.)
 * Usage: incr_dirty [fork] */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define FRAME_PAGES 256
#define M 24
#define BORN_STEP 8
#define MOVE_STEP 10

struct region {
    const char *name;
    int id;
    uint8_t *base;
    size_t pages;
    unsigned long born; /* pages hold version 0 as of this step */
};

static uint8_t bss[2 << 20] __attribute__((aligned(4096)));
static struct region regions[4];
static int nregions;
static int pipefd[2];
static const char *who = "tick";

static void fill(uint64_t *w, int id, size_t p, unsigned long v) {
    uint64_t x = (uint64_t)(id + 1) * 0x9e3779b97f4a7c15ull ^ (p + 1) * 0xbf58476d1ce4e5b9ull ^
                 (v + 7) * 0x94d049bb133111ebull;
    for (int i = 0; i < PAGE / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = x;
    }
}

static int chosen(size_t p) {
    size_t f = p / FRAME_PAGES, j = p % FRAME_PAGES, c = (f * 13) % FRAME_PAGES;
    return j == c || j == (c + 1) % FRAME_PAGES;
}

/* The step that last wrote page p of r, as of step s (0: none since r->born). */
static unsigned long last_write(const struct region *r, size_t p, unsigned long s) {
    if (!chosen(p) || s <= r->born) return 0;
    unsigned long g = (p / FRAME_PAGES) % M, d = (s % M + M - g) % M;
    if (d > s) return 0;
    unsigned long t = s - d;
    return t > r->born ? t : 0;
}

static void die(const char *what) {
    printf("ERROR %s\n", what);
    fflush(stdout);
    exit(3);
}

static void verify(unsigned long s) {
    static uint64_t want[PAGE / 8];
    for (int k = 0; k < nregions; k++) {
        struct region *r = &regions[k];
        for (size_t p = 0; p < r->pages; p++) {
            unsigned long v = last_write(r, p, s);
            fill(want, r->id, p, v);
            if (memcmp(r->base + p * PAGE, want, PAGE)) {
                printf("CORRUPT %s region %s page %zu after step %lu (version %lu expected)\n",
                       who, r->name, p, s, v);
                fflush(stdout);
                exit(2);
            }
        }
    }
}

static void step(unsigned long s) {
    static uint64_t buf[PAGE / 8];
    for (int k = 0; k < nregions; k++) {
        struct region *r = &regions[k];
        for (size_t p = 0; p < r->pages; p++) {
            if (last_write(r, p, s) != s) continue;
            uint8_t *at = r->base + p * PAGE;
            if ((p / FRAME_PAGES) % 2 == 0) {
                fill((uint64_t *)at, r->id, p, s);
                continue;
            }
            /* The kernel writes the page (copy_to_user), not this process's stores. */
            fill(buf, r->id, p, s);
            if (write(pipefd[1], buf, PAGE) != PAGE) die("write to the pipe");
            if (read(pipefd[0], at, PAGE) != PAGE) die("read from the pipe");
        }
    }
}

static void add(const char *name, int id, uint8_t *base, size_t bytes, unsigned long born) {
    struct region *r = &regions[nregions++];
    r->name = name;
    r->id = id;
    r->base = base;
    r->pages = bytes / PAGE;
    r->born = born;
    for (size_t p = 0; p < r->pages; p++) fill((uint64_t *)(base + p * PAGE), id, p, 0);
}

static uint8_t *map(size_t bytes, int flags) {
    void *p = mmap(0, bytes, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    return p;
}

int main(int argc, char **argv) {
    int forks = argc > 1 && strcmp(argv[1], "fork") == 0;
    if (pipe(pipefd)) die("pipe");
    add("array", 1, map(24 << 20, MAP_PRIVATE), 24 << 20, 0);
    add("bss", 2, bss, sizeof bss, 0);
    add("moved", 3, map(4 << 20, MAP_PRIVATE), 4 << 20, 0);
    if (forks) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) who = "ctick";
    }
    for (unsigned long s = 1;; s++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, 0);
        verify(s - 1);
        if (s == BORN_STEP)
            add("born", 5, map(4 << 20, MAP_PRIVATE), 4 << 20, s - 1);
        if (s == MOVE_STEP) {
            /* Move the region to a fresh address (a placeholder mapping it replaces). */
            struct region *r = &regions[2];
            uint8_t *to = map(r->pages * PAGE, MAP_PRIVATE);
            void *p = mremap(r->base, r->pages * PAGE, r->pages * PAGE,
                             MREMAP_MAYMOVE | MREMAP_FIXED, to);
            if (p == MAP_FAILED) die("mremap");
            r->base = p;
        }
        step(s);
        printf("%s %lu\n", who, s);
        fflush(stdout);
    }
}
