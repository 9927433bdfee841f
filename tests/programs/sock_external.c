/* A client of a server outside the computation:
 *
 *   sock_external PORT ROUNDS
 *
 * Sends "ping N" to 127.0.0.1:PORT and expects "pong N", every 20 ms, printing "pong N".
 * When the connection fails (what a restart does to a socket whose peer is outside the
 * computation) it prints "lost <reason>", connects again and goes on with the same N. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int dial(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 100; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) return s;
        close(s);
        pause_ms(50);
    }
    printf("FAIL cannot connect: %s\n", strerror(errno));
    exit(3);
}

/* One exchange; 0 = ok, else the errno (or -1 for end of file). */
static int exchange(int s, long n) {
    char buf[64];
    int len = snprintf(buf, sizeof buf, "ping %ld\n", n);
    if (send(s, buf, (size_t)len, MSG_NOSIGNAL) != len) return errno;
    size_t got = 0;
    while (got + 1 < sizeof buf) {
        ssize_t r = recv(s, buf + got, 1, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        if (r == 0) return -1;
        if (buf[got++] == '\n') break;
    }
    buf[got] = 0;
    long v = -1;
    if (sscanf(buf, "pong %ld", &v) != 1 || v != n) {
        printf("CORRUPT reply '%s' to ping %ld\n", buf, n);
        exit(3);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int port = atoi(argv[1]);
    long rounds = atol(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int s = dial(port);
    for (long n = 1; n <= rounds;) {
        int e = exchange(s, n);
        if (e != 0) {
            printf("lost %s\n", e < 0 ? "end of file" : strerror(e));
            close(s);
            s = dial(port);
            continue;
        }
        printf("pong %ld\n", n++);
        pause_ms(20);
    }
    printf("done\n");
    return 0;
}
