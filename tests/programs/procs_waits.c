/* Waits with a timeout across checkpoints: each round, four threads wait 1.5 s on an empty
 * pipe with poll, ppoll, select and epoll_wait. A checkpoint (or a restart) during the wait
 * must not end it early with EINTR: each must time out (return 0) after at least 1.5 s.
 * Prints "round N ok" or a FAIL line. Usage: procs_waits ROUNDS */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static int rfd;
static const char *names[] = {"poll", "ppoll", "select", "epoll_wait"};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *waiter(void *arg) {
    long kind = (long)arg;
    double t0 = now();
    int r = -2, err = 0;
    struct pollfd p = {rfd, POLLIN, 0};
    if (kind == 0) {
        r = poll(&p, 1, 1500);
    } else if (kind == 1) {
        struct timespec ts = {1, 500000000};
        r = ppoll(&p, 1, &ts, NULL);
    } else if (kind == 2) {
        fd_set s;
        FD_ZERO(&s);
        FD_SET(rfd, &s);
        struct timeval tv = {1, 500000};
        r = select(rfd + 1, &s, NULL, NULL, &tv);
    } else {
        int ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = rfd}, out;
        epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev);
        r = epoll_wait(ep, &out, 1, 1500);
        err = errno;
        close(ep);
    }
    if (!err) err = errno;
    double took = now() - t0;
    if (r != 0 || took < 1.49) {
        printf("FAIL %s returned %d (%s) after %.3f s\n", names[kind], r, r < 0 ? strerror(err) : "-", took);
        exit(3);
    }
    return NULL;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int p[2];
    if (pipe(p)) return 2;
    rfd = p[0];
    for (long n = 1; n <= rounds; n++) {
        printf("start %ld\n", n);
        pthread_t t[4];
        for (long k = 0; k < 4; k++) pthread_create(&t[k], NULL, waiter, (void *)k);
        for (int k = 0; k < 4; k++) pthread_join(t[k], NULL);
        printf("round %ld ok\n", n);
    }
    printf("done\n");
    return 0;
}
