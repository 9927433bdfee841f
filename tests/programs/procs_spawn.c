/* Children made every way a program makes them, checkpointed and restarted with their parent:
 *   spawn:  posix_spawn with a custom, minimal environment (no LD_PRELOAD in it)
 *   vfork:  vfork + execl
 *   popen:  popen("... child popen", "r"); the parent reads its numbered lines from the pipe
 *   system: system("exit 5") every 10 ticks; the parent checks the status
 * Each child checks getppid() against the parent's pid and prints "<name> N". The parent prints
 * "tick N", checks its children are still its children (waitpid WNOHANG == 0) and every popen
 * line (consecutive numbers), and at the end kills and reaps them and prints "done".
 * Usage: procs_spawn LIMIT | procs_spawn child NAME PARENT_PID */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pause20(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int child(const char *name, pid_t parent) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (long n = 1;; n++) {
        if (getppid() != parent) {
            printf("FAIL %s %ld: parent %d, was %d\n", name, n, getppid(), parent);
            return 3;
        }
        printf("%s %ld\n", name, n);
        pause20();
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "child") == 0) return child(argv[2], atoi(argv[3]));
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len < 0) return 2;
    self[len] = 0;
    char me[16];
    snprintf(me, sizeof me, "%d", getpid());

    char *spawn_argv[] = {self, "child", "spawn", me, NULL};
    char *spawn_env[] = {"PATH=/usr/bin:/bin", NULL};
    pid_t a;
    int e = posix_spawn(&a, self, NULL, NULL, spawn_argv, spawn_env);
    if (e) { printf("FAIL posix_spawn: %s\n", strerror(e)); return 2; }

    pid_t b = vfork();
    if (b == 0) {
        execl(self, self, "child", "vfork", me, (char *)NULL);
        _exit(127);
    }

    char cmd[4200];
    snprintf(cmd, sizeof cmd, "exec '%s' child popen %s", self, me);
    FILE *c = popen(cmd, "r");
    if (!c) return 2;
    /* The popen child's parent is the shell that execs it: the shell becomes it, so it is us. */

    long expect = 1;
    char line[256];
    for (long n = 1; n <= limit; n++) {
        int st;
        if (waitpid(a, &st, WNOHANG) != 0 || waitpid(b, &st, WNOHANG) != 0) {
            printf("FAIL tick %ld: a child is gone (errno %d)\n", n, errno);
            return 3;
        }
        if (!fgets(line, sizeof line, c)) { printf("FAIL tick %ld: popen pipe ended\n", n); return 3; }
        long got;
        if (sscanf(line, "popen %ld", &got) != 1 || got != expect) {
            printf("FAIL tick %ld: popen line '%s', wanted %ld\n", n, line, expect);
            return 3;
        }
        expect++;
        if (n % 10 == 0) {
            int s = system("exit 5");
            if (!WIFEXITED(s) || WEXITSTATUS(s) != 5) { printf("FAIL tick %ld: system gave %d\n", n, s); return 3; }
        }
        printf("tick %ld popen %ld\n", n, got);
        pause20();
    }
    kill(a, SIGTERM);
    kill(b, SIGTERM);
    int sa, sb;
    if (waitpid(a, &sa, 0) != a || !WIFSIGNALED(sa) || waitpid(b, &sb, 0) != b || !WIFSIGNALED(sb)) {
        printf("FAIL: reaping the spawned children\n");
        return 3;
    }
    int sc = pclose(c); /* the popen child dies of SIGPIPE on its next line */
    if (sc == -1) { printf("FAIL: pclose\n"); return 3; }
    printf("done\n");
    return 0;
}
