/* A pre-forked server and socket options, checkpointed:
 *
 *   sock_listen ROUNDS
 *
 * The parent binds an IPv6 listener on [::1] (IPV6_V6ONLY, SO_REUSEADDR) and forks a child
 * that serves it: both processes hold the listener. The parent also keeps one connection to
 * it, both ends in the parent (c, the client end, gets SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF,
 * TCP_NODELAY, SO_LINGER and O_NONBLOCK). Each round the parent connects anew to the
 * listener's port, sends "ping N", expects "pong N" from the child, sends N through c and reads
 * it from the accepted end, then prints "ping N <options of c and of the listener>". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int geti(int fd, int level, int name) {
    int v = -1;
    socklen_t l = sizeof v;
    getsockopt(fd, level, name, &v, &l);
    return v;
}

static int line(int fd, char *buf, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        if (buf[n++] == '\n') break;
    }
    buf[n] = 0;
    return (int)n;
}

static void serve(int l) {
    for (;;) {
        int s = accept(l, NULL, NULL);
        if (s < 0) { if (errno == EINTR) continue; printf("FAIL child: accept: %s\n", strerror(errno)); exit(3); }
        char buf[64];
        long n;
        if (line(s, buf, sizeof buf) < 0 || sscanf(buf, "ping %ld", &n) != 1) {
            printf("FAIL child: bad request '%s'\n", buf);
            exit(3);
        }
        dprintf(s, "pong %ld\n", n);
        close(s);
    }
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 100;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int one = 1;
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 16) || getsockname(l, (struct sockaddr *)&a, &al)) {
        perror("listen");
        return 2;
    }
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    int rcv = 65536, snd = 32768;
    struct linger lg = {1, 5};
    setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    setsockopt(c, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 2; }
    int acc = accept(l, NULL, NULL);
    fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);

    pid_t pid = fork();
    if (pid == 0) {
        close(c);
        close(acc);
        serve(l);
    }
    for (long n = 1; n <= rounds; n++) {
        int x = socket(AF_INET6, SOCK_STREAM, 0);
        if (connect(x, (struct sockaddr *)&a, sizeof a)) {
            printf("FAIL parent: connect to the listener: %s\n", strerror(errno));
            return 3;
        }
        dprintf(x, "ping %ld\n", n);
        char buf[64];
        long got = -1;
        if (line(x, buf, sizeof buf) < 0 || sscanf(buf, "pong %ld", &got) != 1 || got != n) {
            printf("FAIL parent: round %ld: reply '%s'\n", n, buf);
            return 3;
        }
        close(x);
        char msg[32];
        int len = snprintf(msg, sizeof msg, "%ld\n", n);
        if (send(c, msg, (size_t)len, MSG_NOSIGNAL) != len || line(acc, buf, sizeof buf) < 0 || atol(buf) != n) {
            printf("FAIL parent: round %ld over the kept connection: %s\n", n, strerror(errno));
            return 3;
        }
        struct linger g = {0, 0};
        socklen_t gl = sizeof g;
        getsockopt(c, SOL_SOCKET, SO_LINGER, &g, &gl);
        printf("ping %ld keepalive=%d rcvbuf=%d sndbuf=%d nodelay=%d linger=%d/%d nonblock=%d "
               "v6only=%d reuseaddr=%d listening=%d\n",
               n, geti(c, SOL_SOCKET, SO_KEEPALIVE), geti(c, SOL_SOCKET, SO_RCVBUF),
               geti(c, SOL_SOCKET, SO_SNDBUF), geti(c, IPPROTO_TCP, TCP_NODELAY), g.l_onoff,
               g.l_linger, (fcntl(c, F_GETFL) & O_NONBLOCK) != 0, geti(l, IPPROTO_IPV6, IPV6_V6ONLY),
               geti(l, SOL_SOCKET, SO_REUSEADDR), geti(l, SOL_SOCKET, SO_ACCEPTCONN));
        pause_ms(20);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    printf("done\n");
    return 0;
}
