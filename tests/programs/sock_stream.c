/* Two processes connected by a socket, checkpointed with data in flight both ways.
 *
 *   sock_stream MODE RECORDS [DIR]
 *
 * MODE: tcp4 (127.0.0.1), tcp6 ([::1]), unix (socketpair stream), unixpath (a stream
 * listener bound to DIR/s.sock), seqpacket and dgram (socketpairs; messages have varying
 * lengths so boundaries are checked), dgrampath (the parent binds a datagram socket at
 * DIR/d.sock, the child connects to it and sends; one direction).
 *
 * The parent is the server (listens, accepts), the child the client. Each writes records
 * 1..RECORDS as fast as the socket takes them and reads the other's records slowly (1 ms per
 * record), checking that every record arrives exactly once, in order, whole. The parent prints
 * "recv K" every 100 records, the child "back K"; at the end "child done N" and "done". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REC 9

static int message_mode;

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Record n: "%08ld\n", and in message modes 0..49 bytes of padding 'a'+n%26. */
static size_t make_record(long n, char *buf) {
    snprintf(buf, 16, "%08ld\n", n % 100000000);
    size_t len = REC;
    if (message_mode) {
        size_t pad = (size_t)(n % 50);
        memset(buf + REC, 'a' + (int)(n % 26), pad);
        len += pad;
    }
    return len;
}

struct side {
    const char *who;     /* "recv" or "back" */
    int fd;
    long limit;
    long next_out;       /* next record to send */
    char out[64];
    size_t out_len, out_done;
    long expect;         /* next record expected */
    char in[64];
    size_t in_got;
};

/* Sends as much as the socket takes. Returns -1 on error. */
static int pump_out(struct side *s) {
    for (;;) {
        if (s->out_done == s->out_len) {
            if (s->next_out > s->limit) return 0;
            s->out_len = make_record(s->next_out++, s->out);
            s->out_done = 0;
        }
        ssize_t w = send(s->fd, s->out + s->out_done, s->out_len - s->out_done,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (w < 0) { printf("FAIL %s: send: %s\n", s->who, strerror(errno)); return -1; }
        if (message_mode && (size_t)w != s->out_len) {
            printf("FAIL %s: short message send\n", s->who);
            return -1;
        }
        s->out_done += (size_t)w;
    }
}

/* Reads at most one record. 1 = a record checked, 0 = nothing yet, -1 = failure. */
static int read_one(struct side *s) {
    char want[64];
    size_t wlen = make_record(s->expect, want);
    if (message_mode) {
        char buf[128];
        ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
        if (n < 0) { printf("FAIL %s: recv: %s\n", s->who, strerror(errno)); return -1; }
        if ((size_t)n != wlen || memcmp(buf, want, wlen) != 0) {
            printf("CORRUPT %s: got message '%.*s' (%zd bytes), expected record %ld (%zu bytes)\n",
                   s->who, (int)(n > 9 ? 9 : n), buf, n, s->expect, wlen);
            return -1;
        }
    } else {
        while (s->in_got < REC) {
            ssize_t n = recv(s->fd, s->in + s->in_got, REC - s->in_got, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
            if (n < 0) { printf("FAIL %s: recv: %s\n", s->who, strerror(errno)); return -1; }
            if (n == 0) { printf("FAIL %s: EOF at record %ld\n", s->who, s->expect); return -1; }
            s->in_got += (size_t)n;
        }
        s->in_got = 0;
        if (memcmp(s->in, want, REC) != 0) {
            printf("CORRUPT %s: got record '%.8s', expected %ld\n", s->who, s->in, s->expect);
            return -1;
        }
    }
    if (s->expect % 100 == 0) printf("%s %ld\n", s->who, s->expect / 100);
    s->expect++;
    return 1;
}

/* Runs one side until it has sent and received everything (send_limit 0: receive only). */
static int run(struct side *s, int sending, int receiving) {
    if (!sending) s->next_out = s->limit + 1;
    if (!receiving) s->expect = s->limit + 1;
    while (s->next_out <= s->limit || s->out_done < s->out_len || s->expect <= s->limit) {
        struct pollfd p = {s->fd, 0, 0};
        if (s->expect <= s->limit) p.events |= POLLIN;
        if (s->next_out <= s->limit || s->out_done < s->out_len) p.events |= POLLOUT;
        if (poll(&p, 1, 1000) < 0 && errno != EINTR) { printf("FAIL %s: poll\n", s->who); return 3; }
        if (pump_out(s) < 0) return 3;
        int r = read_one(s);
        if (r < 0) return 3;
        if (r > 0) pause_ms(1);
    }
    return 0;
}

static void unix_addr(struct sockaddr_un *a, const char *dir, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: sock_stream MODE RECORDS [DIR]\n"); return 2; }
    const char *mode = argv[1];
    long limit = atol(argv[2]);
    const char *dir = argc > 3 ? argv[3] : ".";
    setvbuf(stdout, NULL, _IOLBF, 0);
    message_mode = !strcmp(mode, "seqpacket") || !strcmp(mode, "dgram") || !strcmp(mode, "dgrampath");
    int one_way = !strcmp(mode, "dgrampath");

    int lst = -1, pair[2] = {-1, -1};
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct sockaddr_un ua;
    if (!strcmp(mode, "tcp4") || !strcmp(mode, "tcp6")) {
        int v6 = mode[3] == '6';
        lst = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
        memset(&ss, 0, sizeof ss);
        if (v6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            a->sin6_family = AF_INET6;
            a->sin6_addr = in6addr_loopback;
            sl = sizeof *a;
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            sl = sizeof *a;
        }
        if (bind(lst, (struct sockaddr *)&ss, sl) || listen(lst, 4) ||
            getsockname(lst, (struct sockaddr *)&ss, &sl)) {
            perror("listen");
            return 2;
        }
    } else if (!strcmp(mode, "unixpath")) {
        lst = socket(AF_UNIX, SOCK_STREAM, 0);
        unix_addr(&ua, dir, "s.sock");
        unlink(ua.sun_path);
        if (bind(lst, (struct sockaddr *)&ua, sizeof ua) || listen(lst, 4)) { perror("listen"); return 2; }
    } else if (!strcmp(mode, "dgrampath")) {
        lst = socket(AF_UNIX, SOCK_DGRAM, 0);
        unix_addr(&ua, dir, "d.sock");
        unlink(ua.sun_path);
        if (bind(lst, (struct sockaddr *)&ua, sizeof ua)) { perror("bind"); return 2; }
    } else {
        int ty = !strcmp(mode, "unix") ? SOCK_STREAM : !strcmp(mode, "seqpacket") ? SOCK_SEQPACKET : SOCK_DGRAM;
        if (socketpair(AF_UNIX, ty, 0, pair)) { perror("socketpair"); return 2; }
    }

    pid_t pid = fork();
    if (pid == 0) {
        int fd;
        if (pair[1] >= 0) {
            close(pair[0]);
            fd = pair[1];
        } else {
            if (lst >= 0) close(lst);
            int unix_mode = !strcmp(mode, "unixpath") || !strcmp(mode, "dgrampath");
            fd = socket(unix_mode ? AF_UNIX : ss.ss_family, one_way ? SOCK_DGRAM : SOCK_STREAM, 0);
            int r = unix_mode ? connect(fd, (struct sockaddr *)&ua, sizeof ua)
                              : connect(fd, (struct sockaddr *)&ss, sl);
            if (r) { printf("FAIL child: connect: %s\n", strerror(errno)); return 3; }
        }
        struct side s = {"back", fd, limit, 1, {0}, 0, 0, 1, {0}, 0};
        int rc = run(&s, 1, !one_way);
        if (rc == 0) printf("child done %ld\n", limit);
        return rc;
    }
    int fd;
    if (pair[0] >= 0) {
        close(pair[1]);
        fd = pair[0];
    } else if (one_way) {
        fd = lst;
    } else {
        fd = accept(lst, NULL, NULL);
        if (fd < 0) { printf("FAIL parent: accept: %s\n", strerror(errno)); return 3; }
        close(lst);
    }
    struct side s = {"recv", fd, limit, 1, {0}, 0, 0, 1, {0}, 0};
    int rc = run(&s, !one_way, 1);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("FAIL parent: the child failed (status %#x)\n", st);
        return 3;
    }
    if (rc == 0) printf("done\n");
    return rc;
}
