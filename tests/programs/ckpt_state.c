/* Kernel and memory state a restart must bring back, checked on every tick:
 * - a sparse 4 GiB MAP_NORESERVE mapping with a few touched pages (patterns kept, the image
 *   stays small), a mapping with a munmap'ed hole, a mremap'ed block, memory grown with sbrk;
 * - a SIGUSR1 handler (raised and counted every tick), SIGUSR2 blocked and pending since the
 *   start, unblocked at tick UNBLOCK_AT: its handler must run exactly once;
 * - a periodic ITIMER_REAL (SIGALRM count keeps growing), umask, working directory;
 * - rseq: the thread is pinned to alternating CPUs and sched_getcpu() must follow;
 * - /proc/self/maps still names the program's file and [heap], /proc/self/cmdline the program.
 * Prints "tick N" lines; "FAIL <what>" and exit 3 on the first mismatch. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define GIB (1UL << 30)
#define PAGE 4096UL
#define UNBLOCK_AT 60

static volatile long usr1, usr2, alrm;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) { (void)s; usr2++; }
static void on_alrm(int s) { (void)s; alrm++; }

static void fail(long n, const char *what) {
    printf("FAIL tick %ld: %s\n", n, what);
    exit(3);
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ncpu = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;

    unsigned char *sparse = mmap(NULL, 4 * GIB, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sparse == MAP_FAILED) fail(0, "mmap 4 GiB");
    for (unsigned long i = 0; i < 8; i++) memset(sparse + i * (GIB / 2) + 12345, (int)(0x10 + i), 3000);

    unsigned char *holey = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (unsigned long i = 0; i < 16; i++) memset(holey + i * PAGE, (int)(0x40 + i), PAGE);
    munmap(holey + 5 * PAGE, 2 * PAGE);
    unsigned char *moved = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(moved, 0x77, 4 * PAGE);
    moved = mremap(moved, 4 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    if (moved == MAP_FAILED) fail(0, "mremap");
    memset(moved + 60 * PAGE, 0x78, PAGE);

    unsigned char *brk0 = sbrk(0);
    unsigned char *grown = sbrk(1 << 20);
    if (grown == (void *)-1) fail(0, "sbrk");
    memset(grown, 0x5a, 1 << 20);

    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    signal(SIGALRM, on_alrm);
    sigset_t blk;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR2);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    raise(SIGUSR2);
    struct itimerval it = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &it, NULL);
    umask(027);
    mkdir("ckpt_state_cwd", 0755);
    if (chdir("ckpt_state_cwd") != 0) fail(0, "chdir");

    long last_alrm = 0;
    for (long n = 1; n <= limit; n++) {
        for (unsigned long i = 0; i < 8; i++) {
            unsigned char *p = sparse + i * (GIB / 2);
            if (p[12345] != 0x10 + i || p[12345 + 2999] != 0x10 + i || p[12344] != 0 || p[12345 + 3000] != 0)
                fail(n, "sparse mapping content");
        }
        if (sparse[3 * GIB + 7 * PAGE] != 0) fail(n, "untouched sparse page");
        for (unsigned long i = 0; i < 16; i++) {
            if (i == 5 || i == 6) continue;
            if (holey[i * PAGE] != 0x40 + i || holey[i * PAGE + PAGE - 1] != 0x40 + i) fail(n, "holey mapping");
        }
        if (moved[0] != 0x77 || moved[4 * PAGE - 1] != 0x77 || moved[60 * PAGE] != 0x78 || moved[10 * PAGE] != 0)
            fail(n, "mremapped block");
        if (grown[0] != 0x5a || grown[(1 << 20) - 1] != 0x5a || (unsigned char *)sbrk(0) < grown + (1 << 20) || grown < brk0)
            fail(n, "brk memory");
        unsigned char *more = sbrk(4096);
        if (more == (void *)-1) fail(n, "sbrk after restart");
        more[0] = 1;
        sbrk(-4096);

        long before = usr1;
        raise(SIGUSR1);
        if (usr1 != before + 1 || usr1 != n) fail(n, "SIGUSR1 handler");
        if (n == UNBLOCK_AT) sigprocmask(SIG_UNBLOCK, &blk, NULL);
        if (usr2 != (n >= UNBLOCK_AT ? 1 : 0)) fail(n, "pending SIGUSR2 delivered wrongly");

        mode_t m = umask(027);
        if (m != 027) fail(n, "umask");
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd) || !strstr(cwd, "/ckpt_state_cwd")) fail(n, "cwd");

        if (ncpu == 2) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(n & 1, &set);
            if (sched_setaffinity(0, sizeof set, &set) == 0) {
                sched_yield();
                if (sched_getcpu() != (int)(n & 1)) fail(n, "sched_getcpu does not follow the affinity (rseq)");
            }
        }
        if (n % 10 == 0) {
            char buf[65536];
            FILE *f = fopen("/proc/self/maps", "r");
            size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f) fclose(f);
            buf[len] = 0;
            if (!strstr(buf, "/ckpt_state\n") || !strstr(buf, "[heap]")) fail(n, "/proc/self/maps lost the program's file or [heap]");
            f = fopen("/proc/self/cmdline", "r");
            len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f) fclose(f);
            buf[len] = 0;
            if (!strstr(buf, "ckpt_state")) fail(n, "/proc/self/cmdline");
            if (alrm <= last_alrm) fail(n, "the interval timer stopped");
            last_alrm = alrm;
        }
        printf("tick %ld usr1 %ld usr2 %ld alrm %ld\n", n, usr1, usr2, alrm);
        struct timespec ts = {0, 20 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    printf("done\n");
    return 0;
}
