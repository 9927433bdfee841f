/* mq_notify registrations over checkpoints and restarts. Three POSIX queues, a parent and
 * its child (which sends on command, read from a pipe):
 *   A  each round the parent registers SIGEV_SIGNAL (SIGRTMIN+3, value 1000+round), prints 8
 *      ticks (checkpoints land there), has the child send "a<round>", and waits for the signal:
 *      value 1000+round and si_code SI_MESGQ, then receives the message;
 *   T  the same with SIGEV_THREAD (value 2000+round): the function records its value;
 *   B  holds one message all along and is registered once (SIGEV_SIGNAL, value 0xB0B): a
 *      notification only fires when a message reaches an EMPTY queue, so no signal may ever
 *      come from B (a checkpoint draining and refilling it must not fire it), until the end:
 *      the parent empties B, the child sends, and the 0xB0B signal must arrive.
 * Prints "tick N", "FAIL ..." (exit 3), "done". argv: limit name-suffix */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { printf("FAIL tick %ld round %ld: ", n, round_); printf(__VA_ARGS__); printf("\n"); exit(3); } while (0)

static long n, round_;
static volatile sig_atomic_t a_count, a_value, a_code, b_count;
static volatile long t_count, t_value;

static void nap(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void on_signal(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)ctx;
    if (si->si_value.sival_int == 0xB0B) { b_count++; return; }
    a_value = si->si_value.sival_int;
    a_code = si->si_code;
    a_count++;
}

static void on_thread(union sigval v) {
    t_value = v.sival_int;
    __atomic_add_fetch(&t_count, 1, __ATOMIC_SEQ_CST);
}

struct cmd { char queue; int round; };

static void tell(int fd, char queue, int round) {
    struct cmd c = {queue, round};
    while (write(fd, &c, sizeof c) != sizeof c) {
        if (errno != EINTR) FAIL("write command: %s", strerror(errno));
    }
}

static void receive(mqd_t q, const char *want) {
    char buf[64];
    ssize_t r = mq_receive(q, buf, sizeof buf, NULL);
    if (r < 0) FAIL("mq_receive (want %s): %s", want, strerror(errno));
    buf[r] = 0;
    if (strcmp(buf, want) != 0) FAIL("message '%s', want '%s'", buf, want);
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    const char *sfx = argc > 2 ? argv[2] : "x";
    char an[64], bn[64], tn[64];
    snprintf(an, sizeof an, "/ipc_mqn_a_%s", sfx);
    snprintf(bn, sizeof bn, "/ipc_mqn_b_%s", sfx);
    snprintf(tn, sizeof tn, "/ipc_mqn_t_%s", sfx);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct mq_attr attr = {0, 4, 63, 0};
    mq_unlink(an); mq_unlink(bn); mq_unlink(tn);
    mqd_t a = mq_open(an, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &attr);
    mqd_t b = mq_open(bn, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &attr);
    mqd_t t = mq_open(tn, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &attr);
    if (a < 0 || b < 0 || t < 0) FAIL("mq_open: %s", strerror(errno));
    if (mq_send(b, "b0", 2, 0) != 0) FAIL("mq_send b: %s", strerror(errno));
    int pfd[2];
    if (pipe(pfd) != 0) FAIL("pipe");
    pid_t child = fork();
    if (child == 0) {
        close(pfd[1]);
        mqd_t wa = mq_open(an, O_WRONLY), wb = mq_open(bn, O_WRONLY), wt = mq_open(tn, O_WRONLY);
        if (wa < 0 || wb < 0 || wt < 0) FAIL("child mq_open: %s", strerror(errno));
        struct cmd c;
        for (;;) {
            ssize_t r = read(pfd[0], &c, sizeof c);
            if (r < 0 && errno == EINTR) continue;
            if (r != sizeof c || c.queue == 'q') return 0;
            char m[32];
            snprintf(m, sizeof m, "%c%d", c.queue, c.round);
            mqd_t q = c.queue == 'a' ? wa : c.queue == 'b' ? wb : wt;
            if (mq_send(q, m, strlen(m), 0) != 0) FAIL("child mq_send %s: %s", m, strerror(errno));
        }
    }
    close(pfd[0]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN + 3, &sa, NULL);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN + 3;
    ev.sigev_value.sival_int = 0xB0B;
    if (mq_notify(b, &ev) != 0) FAIL("mq_notify b: %s", strerror(errno));
    n = 1;
    for (round_ = 1; n <= limit; round_++) {
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = SIGEV_SIGNAL;
        ev.sigev_signo = SIGRTMIN + 3;
        ev.sigev_value.sival_int = 1000 + round_;
        if (mq_notify(a, &ev) != 0) FAIL("mq_notify a: %s", strerror(errno));
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = SIGEV_THREAD;
        ev.sigev_notify_function = on_thread;
        ev.sigev_value.sival_int = 2000 + round_;
        if (mq_notify(t, &ev) != 0) FAIL("mq_notify t: %s", strerror(errno));
        long a0 = a_count, t0 = t_count;
        for (int i = 0; i < 8 && n <= limit; i++, n++) {
            if (b_count != 0) FAIL("queue B, never empty, sent a notification");
            if (a_count != a0 || t_count != t0) FAIL("a notification before any message");
            printf("tick %ld\n", n);
            nap(20);
        }
        char want[32];
        tell(pfd[1], 'a', (int)round_);
        tell(pfd[1], 't', (int)round_);
        for (int w = 0; a_count == a0 || t_count == t0; w++) {
            if (w > 1500) FAIL("no notification: signal %ld->%d, thread %ld->%ld", a0, (int)a_count, t0, t_count);
            nap(2);
        }
        if (a_count != a0 + 1 || a_value != 1000 + round_ || a_code != SI_MESGQ)
            FAIL("signal notification count %d value %d code %d, want value %ld code %d", (int)a_count - (int)a0, (int)a_value, (int)a_code, 1000 + round_, SI_MESGQ);
        if (t_count != t0 + 1 || t_value != 2000 + round_)
            FAIL("thread notification count %ld value %ld, want value %ld", t_count - t0, t_value, 2000 + round_);
        snprintf(want, sizeof want, "a%ld", round_);
        receive(a, want);
        snprintf(want, sizeof want, "t%ld", round_);
        receive(t, want);
    }
    /* B: empty it; the next message must fire the registration made at the start. */
    receive(b, "b0");
    tell(pfd[1], 'b', 1);
    for (int w = 0; b_count == 0; w++) {
        if (w > 1500) FAIL("queue B's registration did not survive: no notification");
        nap(2);
    }
    receive(b, "b1");
    tell(pfd[1], 'q', 0);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("child status %#x", status);
    mq_unlink(an); mq_unlink(bn); mq_unlink(tn);
    printf("done\n");
    return 0;
}
