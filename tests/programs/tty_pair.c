/* A pty pair made by the program: the parent holds the master, the child is a session leader
 * whose controlling terminal and stdio are the slave (as `script` does). The parent sets the
 * window size to 33x111; the child turns echo off. The parent keeps two lines ahead: it
 * writes "line N", the child (slowly) answers "ack N rows R cols C ctty Y echo E" from what
 * its terminal says, so at any moment there are bytes in flight both ways. The parent checks
 * every answer and prints "step K" every 10 answers, then "done N" after the child exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int child(const char *name) {
    if (setsid() < 0) return 10;
    int s = open(name, O_RDWR);
    if (s < 0) return 11;
    dup2(s, 0); dup2(s, 1); dup2(s, 2);
    if (s > 2) close(s);
    struct termios t;
    tcgetattr(0, &t);
    t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL);
    tcsetattr(0, TCSANOW, &t);
    setvbuf(stdout, NULL, _IOLBF, 0);
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        long n;
        if (strncmp(line, "quit", 4) == 0) return 0;
        if (sscanf(line, "line %ld", &n) != 1) { printf("BAD INPUT %s", line); continue; }
        pause_ms(15);
        struct winsize w = {0};
        ioctl(0, TIOCGWINSZ, &w);
        tcgetattr(0, &t);
        /* /dev/tty opens only with a controlling terminal (after setsid, only this pty could
         * be it), whose session is ours and led by us: tcgetsid, getsid and getpid agree
         * (translated alike under virtual ids). */
        int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
        int ctty = tty >= 0 && tcgetsid(0) == getsid(0) && getsid(0) == getpid();
        if (tty >= 0) close(tty);
        printf("ack %ld rows %d cols %d ctty %d echo %d\n", n, w.ws_row, w.ws_col, ctty,
               (t.c_lflag & ECHO) != 0);
    }
    return 12;
}

/* One answer line from the master, without "\r\n". */
static int read_line(int m, char *out, size_t cap) {
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(m, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        if (c == '\r') continue;
        if (c == '\n') { out[n] = 0; return 0; }
        if (n + 1 < cap) out[n++] = c;
    }
}

static int send_line(int m, long n) {
    char buf[32];
    int len = snprintf(buf, sizeof buf, "line %ld\n", n);
    return write(m, buf, len) == len ? 0 : -1;
}

int main(int argc, char **argv) {
    long total = argc > 1 ? atol(argv[1]) : 300;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) { perror("pty"); return 2; }
    struct winsize w = {.ws_row = 33, .ws_col = 111};
    ioctl(m, TIOCSWINSZ, &w);
    char name[64];
    if (ptsname_r(m, name, sizeof name)) { perror("ptsname"); return 2; }
    pid_t pid = fork();
    if (pid == 0) { close(m); _exit(child(name)); }
    /* Wait until the child turned echo off, or our lines would come back. */
    for (int i = 0; i < 500; i++) {
        struct termios t;
        if (tcgetattr(m, &t) == 0 && !(t.c_lflag & ECHO)) break;
        pause_ms(2);
    }
    long sent = 0;
    for (; sent < 2 && sent < total; ) send_line(m, ++sent);
    for (long n = 1; n <= total; n++) {
        char got[128], want[128];
        if (read_line(m, got, sizeof got)) { printf("FAIL read answer %ld: %s\n", n, strerror(errno)); return 3; }
        snprintf(want, sizeof want, "ack %ld rows 33 cols 111 ctty 1 echo 0", n);
        if (strcmp(got, want) != 0) { printf("CORRUPT answer '%s', expected '%s'\n", got, want); return 3; }
        if (n % 10 == 0) printf("step %ld\n", n / 10);
        if (sent < total) send_line(m, ++sent);
    }
    if (write(m, "quit\n", 5) != 5) { printf("FAIL quit\n"); return 3; }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("FAIL the child failed (status %#x)\n", st);
        return 3;
    }
    printf("done %ld\n", total);
    return 0;
}
