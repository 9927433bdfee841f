/* Memory and process state over checkpoint/restart cycles, checked on every tick:
 * - a 4 GiB MAP_NORESERVE reservation with a few touched pages, and 256 MiB of touched heap
 *   (sampled every tick, fully checksummed at the end);
 * - an mmap'ed block with munmap'ed holes; a block that is mremap'ed bigger and back each tick;
 * - brk grown by 64 KiB every tick (also after restart), every earlier increment re-checked;
 * - recursion deeper on every tick (the stack must grow after restart too);
 * - a file mapped read-only and MAP_PRIVATE writable (fd closed before any checkpoint);
 * - libm opened with dlopen, cos() called through dlsym on every tick;
 * - setenv before, getenv after; one new variable per tick; chdir before, getcwd after;
 * - page protections inside one mapping (rw-, ---, r--, rw-) as /proc/self/maps shows them, and
 *   a JIT-style page (machine code written, then made r-x) called on every tick (x86_64);
 * - clock_gettime(CLOCK_MONOTONIC/REALTIME) through the vdso never goes back and agrees with
 *   the system call. (Interval timers: cov_itimer.c and cov_signals.c.)
 * Prints "tick N" lines, "done" at the end; "FAIL tick N: <what>" and exit 3 on a mismatch. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define GIB (1UL << 30)
#define MIB (1UL << 20)
#define PAGE 4096UL
#define HEAP_BYTES (256 * MIB)
#define BRK_STEP (64 * 1024UL)
#define FILE_PAGES 8
#define MAX_TICKS 10000


static void fail(long n, const char *what) {
    printf("FAIL tick %ld: %s\n", n, what);
    exit(3);
}

static uint64_t word(uint64_t i) { return i * 0x9E3779B97F4A7C15ULL + 7; }

/* Sum of 1..depth computed by recursion with a frame of ~256 bytes. */
static long __attribute__((noinline)) recurse(long depth) {
    volatile char pad[240];
    pad[0] = (char)depth;
    if (depth == 0) return 0;
    long r = depth + recurse(depth - 1);
    return r + (pad[0] - (char)depth);
}

static unsigned char file_byte(unsigned long off) { return (unsigned char)(off * 31 + 3); }

static double taylor_cos(double x) {
    double term = 1, sum = 1;
    for (int k = 1; k < 30; k++) {
        term *= -x * x / ((2 * k - 1) * (2 * k));
        sum += term;
    }
    return sum;
}

/* The permissions /proc/self/maps shows for the mapping containing `addr` ("rw-p", ...). */
static int perms_of(void *addr, char out[5]) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[512];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (unsigned long)addr >= lo && (unsigned long)addr < hi) {
            memcpy(out, perms, 5);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

static double ts_sec(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : MAX_TICKS;
    if (limit > MAX_TICKS) limit = MAX_TICKS;
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Sparse reservation. */
    unsigned char *sparse = mmap(NULL, 4 * GIB, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sparse == MAP_FAILED) fail(0, "mmap 4 GiB");
    for (unsigned long i = 0; i < 16; i++) sparse[i * (GIB / 4) + 777] = (unsigned char)(i + 1);

    /* 256 MiB touched heap. */
    uint64_t *heap = malloc(HEAP_BYTES);
    if (!heap) fail(0, "malloc 256 MiB");
    for (uint64_t i = 0; i < HEAP_BYTES / 8; i++) heap[i] = word(i);

    /* Protections inside one mapping, and a JIT page. */
    unsigned char *prot = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(prot, 0x31, 4 * PAGE);
    mprotect(prot + PAGE, PAGE, PROT_NONE);
    mprotect(prot + 2 * PAGE, PAGE, PROT_READ);
    static const char *want_perms[4] = {"rw-p", "---p", "r--p", "rw-p"};
#ifdef __x86_64__
    unsigned char *jit = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static const unsigned char code[] = {0x8d, 0x47, 0x2a, 0xc3}; /* lea eax, [rdi+42]; ret */
    memcpy(jit, code, sizeof code);
    mprotect(jit, PAGE, PROT_READ | PROT_EXEC);
    int (*jitf)(int) = (int (*)(int))(void *)jit;
#endif

    /* Holes. */
    unsigned char *holey = mmap(NULL, 32 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (unsigned long i = 0; i < 32; i++) memset(holey + i * PAGE, (int)(0x20 + i), PAGE);
    munmap(holey + 3 * PAGE, PAGE);
    munmap(holey + 10 * PAGE, 5 * PAGE);
    munmap(holey + 31 * PAGE, PAGE);
    unsigned char *flex = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(flex, 0x66, 8 * PAGE);

    /* brk. */
    static unsigned char *incs[MAX_TICKS + 1];

    /* File mappings: read-only and private writable, fd closed at once. */
    const char *fname = "cov_memory.dat";
    int fd = open(fname, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) fail(0, "create data file");
    static unsigned char fbuf[FILE_PAGES * PAGE];
    for (unsigned long i = 0; i < sizeof fbuf; i++) fbuf[i] = file_byte(i);
    if (write(fd, fbuf, sizeof fbuf) != (ssize_t)sizeof fbuf) fail(0, "write data file");
    unsigned char *fro = mmap(NULL, sizeof fbuf, PROT_READ, MAP_PRIVATE, fd, 0);
    unsigned char *fpriv = mmap(NULL, sizeof fbuf, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (fro == MAP_FAILED || fpriv == MAP_FAILED) fail(0, "mmap data file");
    memset(fpriv + 2 * PAGE, 0xAB, PAGE); /* dirty page 2; pages 0,1,3.. stay the file's */

    /* libm through dlopen. */
    void *libm = dlopen("libm.so.6", RTLD_NOW);
    if (!libm) fail(0, "dlopen libm.so.6");

    /* Environment and cwd. */
    char want_env[64];
    snprintf(want_env, sizeof want_env, "value-%d", (int)getpid());
    setenv("COV_MEMORY_VAR", want_env, 1);
    mkdir("cov_memory_cwd", 0755);
    if (chdir("cov_memory_cwd") != 0) fail(0, "chdir");
    char want_cwd[4096];
    if (!getcwd(want_cwd, sizeof want_cwd)) fail(0, "getcwd");


    struct timespec last_mono = {0, 0}, last_real = {0, 0};
    for (long n = 1; n <= limit; n++) {
        for (unsigned long i = 0; i < 16; i++)
            if (sparse[i * (GIB / 4) + 777] != i + 1 || sparse[i * (GIB / 4) + 778] != 0) fail(n, "sparse mapping");
        for (uint64_t k = 0; k < 4096; k++) {
            uint64_t i = (k * 1048573 + (uint64_t)n * 8191) % (HEAP_BYTES / 8);
            if (heap[i] != word(i)) fail(n, "256 MiB heap sample");
        }
        for (unsigned long i = 0; i < 32; i++) {
            if (i == 3 || (i >= 10 && i < 15) || i == 31) continue;
            if (holey[i * PAGE] != 0x20 + i || holey[i * PAGE + PAGE - 1] != 0x20 + i) fail(n, "mapping with holes");
        }
        /* The holes must still be holes: mmap with MAP_FIXED_NOREPLACE succeeds only there. */
        void *h = mmap(holey + 10 * PAGE, 5 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (h != holey + 10 * PAGE) fail(n, "munmap'ed hole is mapped");
        munmap(h, 5 * PAGE);

        for (int i = 0; i < 4; i++) {
            char perms[5];
            if (perms_of(prot + i * PAGE, perms) != 0 || strcmp(perms, want_perms[i]) != 0) fail(n, "page protections in /proc/self/maps");
        }
        if (prot[0] != 0x31 || prot[2 * PAGE + 100] != 0x31 || prot[3 * PAGE + PAGE - 1] != 0x31) fail(n, "content of protected pages");
#ifdef __x86_64__
        if (jitf((int)n) != (int)n + 42) fail(n, "JIT page");
#endif

        unsigned char *big = mremap(flex, 8 * PAGE, 128 * PAGE, MREMAP_MAYMOVE);
        if (big == MAP_FAILED) fail(n, "mremap grow");
        if (big[0] != 0x66 || big[8 * PAGE - 1] != 0x66 || big[100 * PAGE] != 0) fail(n, "mremap'ed content");
        big[100 * PAGE] = 1;
        flex = mremap(big, 128 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
        if (flex == MAP_FAILED || flex[7 * PAGE] != 0x66) fail(n, "mremap shrink");

        unsigned char *inc = sbrk(BRK_STEP);
        if (inc == (void *)-1) fail(n, "sbrk");
        memset(inc, (int)(n & 0xff), BRK_STEP);
        incs[n] = inc;
        for (long k = 1; k <= n; k++)
            if (incs[k][0] != (k & 0xff) || incs[k][BRK_STEP - 1] != (k & 0xff)) fail(n, "brk increments");

        long depth = 2000 + n * 200;
        if (depth > 30000) depth = 30000;
        if (recurse(depth) != depth * (depth + 1) / 2) fail(n, "deep recursion");

        for (unsigned long i = 0; i < sizeof fbuf; i += 509)
            if (fro[i] != file_byte(i)) fail(n, "read-only file mapping");
        for (unsigned long i = 0; i < sizeof fbuf; i += 509) {
            unsigned char want = (i / PAGE == 2) ? 0xAB : (i / PAGE == 5 && n > 1) ? 0xCD : file_byte(i);
            if (fpriv[i] != want) fail(n, "private writable file mapping");
        }
        fpriv[5 * PAGE + (n % PAGE)] = 0xCD;
        memset(fpriv + 5 * PAGE, 0xCD, PAGE);

        double (*cosp)(double) = (double (*)(double))dlsym(libm, "cos");
        if (!cosp) fail(n, "dlsym cos");
        double x = (n % 50) * 0.1;
        double d = cosp(x) - taylor_cos(x);
        if (d > 1e-12 || d < -1e-12) fail(n, "cos through dlopen");

        const char *v = getenv("COV_MEMORY_VAR");
        if (!v || strcmp(v, want_env) != 0) fail(n, "getenv of a variable set before checkpoint");
        char name[32], val[32];
        snprintf(name, sizeof name, "COV_TICK_%ld", n);
        snprintf(val, sizeof val, "%ld", n * 3);
        setenv(name, val, 1);
        for (long k = 1; k <= n; k += 7) {
            snprintf(name, sizeof name, "COV_TICK_%ld", k);
            v = getenv(name);
            if (!v || atol(v) != k * 3) fail(n, "getenv of a per-tick variable");
        }
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, want_cwd) != 0) fail(n, "cwd");

        struct timespec mono, real, smono;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        clock_gettime(CLOCK_REALTIME, &real);
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &smono);
        if (ts_sec(mono) < ts_sec(last_mono) || ts_sec(real) < ts_sec(last_real)) fail(n, "clock went back");
        if (ts_sec(smono) - ts_sec(mono) > 1.0 || ts_sec(smono) < ts_sec(mono)) fail(n, "vdso CLOCK_MONOTONIC disagrees with the system call");
        last_mono = mono;
        last_real = real;

        printf("tick %ld\n", n);
        struct timespec ts = {0, 20 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < HEAP_BYTES / 8; i++) {
        if (heap[i] != word(i)) fail(limit, "256 MiB heap full check");
        sum += heap[i];
    }
    printf("heapsum %llx\n", (unsigned long long)sum);
    printf("done\n");
    return 0;
}
