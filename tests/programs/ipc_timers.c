/* POSIX timers (timer_create) across checkpoints and restarts:
 * - timer A: CLOCK_MONOTONIC, SIGEV_SIGNAL with SIGRTMIN and sival_int 0xA, periodic 10 ms;
 *   its handler counts firings and records the value it carried;
 * - timer B: a one-shot CLOCK_REALTIME timer created and deleted at start, so the ids the
 *   program holds are not simply 0, 1, 2;
 * - timer C: CLOCK_MONOTONIC, SIGEV_THREAD_ID towards the main thread, SIGRTMIN+1, value 0xC,
 *   periodic 20 ms;
 * - timer D: SIGEV_NONE, one-shot, 1000 s: never fires; its remaining time must stay above
 *   900 s and below 1000 s (a restart keeps the time it had left);
 * - with argv[2] = "thread", timer E: SIGEV_THREAD (a function called with sival_int 0xE),
 *   periodic 15 ms; and every 25 ticks a one-shot SIGEV_THREAD timer F is created, must call
 *   its function within 2 s and is deleted (a timer created after a restart reaches the
 *   runtime's helper thread under its new real tid).
 * Every tick (paced by nanosleep 20 ms) checks with timer_gettime on the held timer_t values
 * that A and C keep their intervals and that both keep firing (their counts grow over every
 * 10 ticks), and that the handler saw only the right values. Prints "tick N", "done". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile long fired_a, fired_c, fired_e, bad_value;

static void on_thread_timer(union sigval v) {
    if (v.sival_int != 0xE) bad_value = v.sival_int;
    __atomic_add_fetch(&fired_e, 1, __ATOMIC_SEQ_CST);
}

static volatile long fired_f;

static void on_oneshot(union sigval v) {
    if (v.sival_int != 0xF) bad_value = v.sival_int;
    __atomic_add_fetch(&fired_f, 1, __ATOMIC_SEQ_CST);
}

static void on_timer(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    if (sig == SIGRTMIN) {
        if (si->si_value.sival_int != 0xA) bad_value = si->si_value.sival_int;
        fired_a++;
    } else {
        if (si->si_value.sival_int != 0xC) bad_value = si->si_value.sival_int;
        fired_c++;
    }
}

/* For a failure message: the kernel's view of the timers and of each thread (signals, and the
 * system call it sleeps in: "nr arg1 ..."). */
static void dump_kernel_state(void) {
    char line[256], path[300];
    FILE *f = fopen("/proc/self/timers", "r");
    while (f && fgets(line, sizeof line, f)) printf("  timers: %s", line);
    if (f) fclose(f);
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        printf("  task %s:", de->d_name);
        snprintf(path, sizeof path, "/proc/self/task/%s/status", de->d_name);
        f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "SigPnd", 6) || !strncmp(line, "SigBlk", 6)) {
                line[strlen(line) - 1] = 0;
                printf(" %s", line);
            }
        if (f) fclose(f);
        snprintf(path, sizeof path, "/proc/self/task/%s/syscall", de->d_name);
        f = fopen(path, "r");
        if (f && fgets(line, sizeof line, f)) printf(" syscall %s", line);
        else printf("\n");
        if (f) fclose(f);
    }
    if (d) closedir(d);
}

static void nap(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

#define FAIL(...) do { printf("FAIL tick %ld: ", n); printf(__VA_ARGS__); printf("\n"); exit(3); } while (0)

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    int with_e = argc > 2 && strcmp(argv[2], "thread") == 0;
    long n = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);

    timer_t a, b, c, d, e = 0;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    ev.sigev_value.sival_int = 0xA;
    if (timer_create(CLOCK_MONOTONIC, &ev, &a) != 0) FAIL("timer_create A: %s", strerror(errno));
    ev.sigev_value.sival_int = 0xB;
    if (timer_create(CLOCK_REALTIME, &ev, &b) != 0) FAIL("timer_create B: %s", strerror(errno));
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev._sigev_un._tid = gettid();
    ev.sigev_signo = SIGRTMIN + 1;
    ev.sigev_value.sival_int = 0xC;
    if (timer_create(CLOCK_MONOTONIC, &ev, &c) != 0) FAIL("timer_create C: %s", strerror(errno));
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_NONE;
    if (timer_create(CLOCK_MONOTONIC, &ev, &d) != 0) FAIL("timer_create D: %s", strerror(errno));
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = on_thread_timer;
    ev.sigev_value.sival_int = 0xE;
    if (with_e && timer_create(CLOCK_MONOTONIC, &ev, &e) != 0) FAIL("timer_create E: %s", strerror(errno));
    timer_delete(b);

    struct itimerspec ia = {{0, 10 * 1000 * 1000}, {0, 10 * 1000 * 1000}};
    struct itimerspec ic = {{0, 20 * 1000 * 1000}, {0, 20 * 1000 * 1000}};
    struct itimerspec id = {{0, 0}, {1000, 0}};
    timer_settime(a, 0, &ia, NULL);
    timer_settime(c, 0, &ic, NULL);
    timer_settime(d, 0, &id, NULL);
    struct itimerspec ie = {{0, 15 * 1000 * 1000}, {0, 15 * 1000 * 1000}};
    if (with_e) timer_settime(e, 0, &ie, NULL);

    long last_a = 0, last_c = 0, last_e = 0;
    for (n = 1; n <= limit; n++) {
        nap(20);
        struct itimerspec cur;
        if (timer_gettime(a, &cur) != 0) FAIL("timer_gettime A: %s", strerror(errno));
        if (cur.it_interval.tv_nsec != 10 * 1000 * 1000) FAIL("A interval %ld", cur.it_interval.tv_nsec);
        if (timer_gettime(c, &cur) != 0) FAIL("timer_gettime C: %s", strerror(errno));
        if (cur.it_interval.tv_nsec != 20 * 1000 * 1000) FAIL("C interval %ld", cur.it_interval.tv_nsec);
        if (timer_gettime(d, &cur) != 0) FAIL("timer_gettime D: %s", strerror(errno));
        if (cur.it_value.tv_sec < 900 || cur.it_value.tv_sec >= 1000 || cur.it_interval.tv_sec != 0)
            FAIL("D has %ld s left", (long)cur.it_value.tv_sec);
        if (timer_gettime(b, &cur) == 0) FAIL("the deleted timer B exists again");
        if (with_e && timer_gettime(e, &cur) != 0) FAIL("timer_gettime E: %s", strerror(errno));
        if (with_e && cur.it_interval.tv_nsec != 15 * 1000 * 1000) FAIL("E interval %ld", cur.it_interval.tv_nsec);
        if (with_e && n % 25 == 0) {
            timer_t f;
            struct sigevent fe;
            memset(&fe, 0, sizeof fe);
            fe.sigev_notify = SIGEV_THREAD;
            fe.sigev_notify_function = on_oneshot;
            fe.sigev_value.sival_int = 0xF;
            long before = fired_f;
            if (timer_create(CLOCK_MONOTONIC, &fe, &f) != 0) FAIL("timer_create F: %s", strerror(errno));
            struct itimerspec fi = {{0, 0}, {0, 1000 * 1000}};
            if (timer_settime(f, 0, &fi, NULL) != 0) FAIL("timer_settime F: %s", strerror(errno));
            for (int w = 0; w < 1000 && fired_f == before; w++) nap(2);
            if (fired_f == before) FAIL("the one-shot SIGEV_THREAD timer never called its function");
            timer_delete(f);
        }
        if (bad_value) FAIL("a timer signal carried %#lx", bad_value);
        if (n % 10 == 0) {
            if (fired_a <= last_a || fired_c <= last_c || (with_e && fired_e <= last_e)) {
                dump_kernel_state();
                struct itimerspec ce = {{0, 0}, {0, 0}};
                if (with_e) timer_gettime(e, &ce);
                printf("  E value %ld.%09ld interval %ld.%09ld overrun %d\n", (long)ce.it_value.tv_sec,
                       ce.it_value.tv_nsec, (long)ce.it_interval.tv_sec, ce.it_interval.tv_nsec,
                       with_e ? timer_getoverrun(e) : 0);
                FAIL("timers stopped: A %ld (was %ld), C %ld (was %ld), E %ld (was %ld)", fired_a,
                     last_a, fired_c, last_c, fired_e, last_e);
            }
            last_a = fired_a;
            last_c = fired_c;
            last_e = fired_e;
        }
        printf("tick %ld\n", n);
    }
    printf("done\n");
    return 0;
}
