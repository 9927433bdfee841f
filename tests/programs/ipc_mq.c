/* POSIX message queues across checkpoints and restarts.
 * - queue M (parent only uses it; the child inherits the descriptor): maxmsg 8, msgsize 64,
 *   opened O_NONBLOCK; it always holds 6 messages of priorities 0..2. Every tick the parent
 *   receives one and checks it against a model of the queue (highest priority first, oldest
 *   first within a priority), then sends a new one; it also checks mq_getattr (maxmsg, msgsize,
 *   O_NONBLOCK, 6 messages).
 * - queues P and R between parent and child: the parent sends "ping N" on P, the child (blocked
 *   in mq_receive) answers "pong N" on R, which the parent waits for (2 s at most).
 * Prints "tick N", "FAIL ..." and exits 3 on a wrong value, "done" at the end.
 * argv: limit name-suffix */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { printf("FAIL tick %ld: ", n); printf(__VA_ARGS__); printf("\n"); exit(3); } while (0)

struct model { unsigned prio; long seq; char text[64]; };
static struct model q[16];
static int qn;
static long seq;

static void model_push(unsigned prio, const char *text) {
    q[qn].prio = prio; q[qn].seq = seq++;
    snprintf(q[qn].text, sizeof q[qn].text, "%s", text);
    qn++;
}

static struct model model_pop(void) {
    int best = 0;
    for (int i = 1; i < qn; i++)
        if (q[i].prio > q[best].prio || (q[i].prio == q[best].prio && q[i].seq < q[best].seq)) best = i;
    struct model m = q[best];
    q[best] = q[--qn];
    return m;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    long n = 0;
    char mname[64], pname[64], rname[64];
    const char *sfx = argc > 2 ? argv[2] : "x";
    snprintf(mname, sizeof mname, "/ipc_mq_m_%s", sfx);
    snprintf(pname, sizeof pname, "/ipc_mq_p_%s", sfx);
    snprintf(rname, sizeof rname, "/ipc_mq_r_%s", sfx);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct mq_attr a = {0, 8, 64, 0};
    mq_unlink(mname); mq_unlink(pname); mq_unlink(rname);
    mqd_t m = mq_open(mname, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0600, &a);
    mqd_t p = mq_open(pname, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
    mqd_t r = mq_open(rname, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
    if (m < 0 || p < 0 || r < 0) FAIL("mq_open: %s", strerror(errno));
    char text[64];
    for (int i = 0; i < 6; i++) {
        snprintf(text, sizeof text, "init-%d", i);
        model_push(i % 3, text);
        mq_send(m, text, strlen(text) + 1, i % 3);
    }
    pid_t child = fork();
    if (child == 0) {
        char buf[64];
        for (;;) {
            ssize_t k = mq_receive(p, buf, sizeof buf, NULL);
            if (k < 0) { if (errno == EINTR) continue; return 4; }
            if (strcmp(buf, "stop") == 0) return 0;
            buf[1] = 'o';  /* ping -> pong */
            if (mq_send(r, buf, strlen(buf) + 1, 1) != 0) return 5;
        }
    }
    for (n = 1; n <= limit; n++) {
        struct mq_attr cur;
        if (mq_getattr(m, &cur) != 0) FAIL("mq_getattr: %s", strerror(errno));
        if (cur.mq_maxmsg != 8 || cur.mq_msgsize != 64 || !(cur.mq_flags & O_NONBLOCK) || cur.mq_curmsgs != 6)
            FAIL("attributes maxmsg %ld msgsize %ld flags %#lx curmsgs %ld", cur.mq_maxmsg, cur.mq_msgsize, cur.mq_flags, cur.mq_curmsgs);
        char buf[64];
        unsigned prio;
        ssize_t k = mq_receive(m, buf, sizeof buf, &prio);
        struct model want = model_pop();
        if (k < 0 || prio != want.prio || strcmp(buf, want.text) != 0)
            FAIL("received '%s' prio %u (%zd), want '%s' prio %u", k > 0 ? buf : "", prio, k, want.text, want.prio);
        snprintf(text, sizeof text, "t%ld", n);
        model_push(n % 3, text);
        if (mq_send(m, text, strlen(text) + 1, n % 3) != 0) FAIL("mq_send: %s", strerror(errno));

        snprintf(text, sizeof text, "ping %ld", n);
        if (mq_send(p, text, strlen(text) + 1, 0) != 0) FAIL("ping: %s", strerror(errno));
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 2;
        do k = mq_timedreceive(r, buf, sizeof buf, NULL, &deadline); while (k < 0 && errno == EINTR);
        char want_pong[64];
        snprintf(want_pong, sizeof want_pong, "pong %ld", n);
        if (k < 0 || strcmp(buf, want_pong) != 0) FAIL("got '%s' (%s), want '%s'", k > 0 ? buf : "", k < 0 ? strerror(errno) : "ok", want_pong);
        printf("tick %ld\n", n);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    mq_send(p, "stop", 5, 0);
    int st;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) FAIL("child ended with %#x", st);
    mq_unlink(mname); mq_unlink(pname); mq_unlink(rname);
    printf("done\n");
    return 0;
}
