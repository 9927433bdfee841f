/* Kernel objects behind file descriptors, checked on every tick across checkpoints/restarts:
 * - a periodic timerfd (20 ms) paces the ticks: a blocking read must keep returning, with the
 *   same interval;
 * - an eventfd carries the previous tick's number: tick n reads n-1 then writes n;
 * - an epoll set holds the eventfd (data 0xE1) and the timerfd (data 0x71): after the write the
 *   eventfd must be reported ready with its data;
 * - an inotify watch on a directory (IN_CREATE) must report the file created on each tick,
 *   with the watch descriptor it had at start;
 * - a signalfd for SIGUSR1 and SIGUSR2, which are blocked and pending from the start (SIGUSR1
 *   process-directed, SIGUSR2 directed at the main thread): both must stay pending on every
 *   tick and be read from the signalfd at the end.
 * Prints "tick N" per tick, "FAIL ..." and exits 3 on a wrong value, "done" at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <fcntl.h>
#include <unistd.h>

/* The program API (include/dmtcp.h), weak: inotify events queued at checkpoint time are not
 * kept (docs/fds.md), so creating a file and reading its event is a critical section. */
int dmtcp_disable_ckpt(void) __attribute__((weak));
int dmtcp_enable_ckpt(void) __attribute__((weak));

#define FAIL(...) do { printf("FAIL tick %ld: ", n); printf(__VA_ARGS__); printf("\n"); exit(3); } while (0)

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    long n = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    sigset_t usr;
    sigemptyset(&usr);
    sigaddset(&usr, SIGUSR1);
    sigaddset(&usr, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr, NULL);
    kill(getpid(), SIGUSR1);
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2);
    int sfd = signalfd(-1, &usr, SFD_NONBLOCK | SFD_CLOEXEC);

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec its = {{0, 20 * 1000 * 1000}, {0, 20 * 1000 * 1000}};
    timerfd_settime(tfd, 0, &its, NULL);

    int efd = eventfd(0, EFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xE1};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    ev.data.u64 = 0x71;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);

    mkdir("ipc_inotify_dir", 0700);
    int in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, "ipc_inotify_dir", IN_CREATE);
    if (sfd < 0 || tfd < 0 || efd < 0 || ep < 0 || in < 0 || wd < 0) FAIL("setup: %s", strerror(errno));

    uint64_t expirations = 0;
    for (n = 1; n <= limit; n++) {
        uint64_t x;
        if (read(tfd, &x, 8) != 8) FAIL("timerfd read: %s", strerror(errno));
        expirations += x;
        struct itimerspec cur;
        timerfd_gettime(tfd, &cur);
        if (cur.it_interval.tv_sec != 0 || cur.it_interval.tv_nsec != 20 * 1000 * 1000)
            FAIL("timerfd interval %ld.%09ld", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);

        uint64_t v = 0;
        ssize_t r = read(efd, &v, 8);
        if (n > 1 && (r != 8 || v != (uint64_t)(n - 1)))
            FAIL("eventfd holds %llu (read %zd), want %ld", (unsigned long long)v, r, n - 1);
        v = n;
        if (write(efd, &v, 8) != 8) FAIL("eventfd write: %s", strerror(errno));
        struct epoll_event got[4];
        int k = epoll_wait(ep, got, 4, 0), seen = 0;
        for (int i = 0; i < k; i++) seen |= got[i].data.u64 == 0xE1;
        if (!seen) FAIL("epoll does not report the eventfd (%d events)", k);

        char name[64];
        snprintf(name, sizeof name, "ipc_inotify_dir/f%ld", n);
        if (dmtcp_disable_ckpt) dmtcp_disable_ckpt();
        int f = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (f >= 0) close(f);
        char buf[4096] __attribute__((aligned(8)));
        r = read(in, buf, sizeof buf);
        if (r <= 0) FAIL("no inotify event for %s", name);
        struct inotify_event *ie = (struct inotify_event *)buf;
        if (ie->wd != wd || !(ie->mask & IN_CREATE) || strcmp(ie->name, name + 16) != 0)
            FAIL("inotify event wd %d mask %#x name %s, want wd %d %s", ie->wd, ie->mask,
                 ie->len ? ie->name : "", wd, name + 16);
        unlink(name);
        while (read(in, buf, sizeof buf) > 0) {}
        if (dmtcp_enable_ckpt) dmtcp_enable_ckpt();

        sigset_t pend;
        sigpending(&pend);
        if (!sigismember(&pend, SIGUSR1) || !sigismember(&pend, SIGUSR2))
            FAIL("pending SIGUSR1 %d SIGUSR2 %d", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2));
        printf("tick %ld\n", n);
    }
    int got1 = 0, got2 = 0;
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == sizeof si) {
        got1 += si.ssi_signo == SIGUSR1;
        got2 += si.ssi_signo == SIGUSR2;
    }
    if (got1 != 1 || got2 != 1) FAIL("signalfd gave SIGUSR1 x%d SIGUSR2 x%d", got1, got2);
    printf("expirations %llu\n", (unsigned long long)expirations);
    printf("done\n");
    return 0;
}
