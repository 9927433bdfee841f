/* Process and thread ids across restarts, computed by the program itself: a parent, its child
 * and a worker thread remember their ids at start and check every tick that
 *   getpid, getppid (child), gettid, syscall(SYS_gettid/SYS_getpid), getsid, getpgrp and
 *   getpgid give the same values,
 *   kill(child) reaches the child and the child's kill(getppid()) answer reaches the parent,
 *   tgkill(pid, worker tid) reaches the worker (its handler checks its own tid),
 *   waitpid(child, WNOHANG) says "running" (0), the answer's si_pid (SA_SIGINFO handler and
 *   sigtimedwait) is the child, also when a checkpoint or restart caught it pending,
 *   setpriority/getpriority, sched_getscheduler and prlimit reach the child by its pid,
 *   readlink("/proc/self") is the pid, /proc/<pid>/task/<worker>/comm names the worker,
 *   /proc/<child>/comm and /proc/<child> (stat, access, opendir) exist.
 * Two signals the child sends at its start (kill, sigqueue with a value) stay pending in the
 * parent until the last tick, through every checkpoint and restart: the parent then checks their
 * si_pid, si_code and value ("kept signals from C").
 * With "burst" among the arguments after N the parent then makes BURST short-lived children
 * by fork, vfork, clone and posix_spawn in turn, the first four aimed at a taken pid when
 * ns_last_pid is writable (see fork_burst; prints "burst N targeted T"); with "nosession" the session is not checked (a session leader outside
 * the computation, whose id depends on where the restart runs). At the end the parent execs itself; the new program checks its pid, session, group and
 * /proc/self, then kills its child by the old pid, reaps it with waitpid and checks the
 * SIGCHLD si_pid.
 * Prints "start pid P child C worker W", "tick N real R" (R: the kernel's pid, from /proc/self/stat), "child N", "done";
 * any failed check prints "FAIL ..." and exits 3. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKER_SIG (SIGRTMIN + 2)
#define BURST 120

static volatile sig_atomic_t acks, worker_pokes, child_pokes;
static volatile pid_t ack_from, expected_sender, chld_from;
static volatile pid_t worker_tid;
static pid_t parent_pid, sid0, pgid0;

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* SA_SIGINFO handlers: the sender's pid must be the virtual one too. */
static void on_ack(int s, siginfo_t *si, void *uc) {
    (void)s; (void)uc;
    if (si->si_pid != expected_sender) ack_from = si->si_pid;
    acks++;
}

static void on_chld(int s, siginfo_t *si, void *uc) { (void)s; (void)uc; chld_from = si->si_pid; }

static void set_info_handler(int sig, void (*h)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(sig, &sa, NULL);
}
static void on_worker(int s) { (void)s; if (gettid() == worker_tid) worker_pokes++; }
static void on_child(int s) {
    (void)s;
    child_pokes++;
    kill(getppid(), SIGURG); /* blocked there: collected by sigtimedwait */
    kill(getppid(), SIGUSR2);
}

static void *worker(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "idsworker");
    worker_tid = gettid();
    for (;;) pause_ms(5);
    return NULL;
}

/* The kernel's own pid, from /proc/self/stat (not translated by anyone). */
static long real_pid(void) {
    char buf[64] = {0};
    int fd = open("/proc/self/stat", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atol(buf) : -1;
}

static int read_file(const char *path, char *out, size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, len - 1, f);
    out[n] = 0;
    fclose(f);
    char *nl = strchr(out, '\n');
    if (nl) *nl = 0;
    return 0;
}

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL " __VA_ARGS__); printf(" (errno %d)\n", errno); exit(3); } } while (0)

#define KEPT_SIG SIGWINCH        /* kill()ed by the child at start, collected by the parent at the end */
#define KEPT_RT_SIG (SIGRTMIN + 3) /* sigqueue()d likewise, with a value */

static void child_main(void) {
    pid_t me = getpid();
    /* Pending (blocked) in the parent through every checkpoint and restart: each must keep its
     * sender, code and value. */
    CHECK(kill(getppid(), KEPT_SIG) == 0, "child: kill(parent)");
    union sigval v = {.sival_int = 4242};
    CHECK(sigqueue(getppid(), KEPT_RT_SIG, v) == 0, "child: sigqueue(parent)");
    for (long n = 1;; n++) {
        CHECK(getppid() == parent_pid, "child %ld: getppid %d, was %d", n, getppid(), parent_pid);
        CHECK(getpid() == me, "child %ld: getpid %d, was %d", n, getpid(), me);
        CHECK(syscall(SYS_getppid) == parent_pid, "child %ld: SYS_getppid", n);
        CHECK((sid0 < 0 || getsid(0) == sid0) && getpgid(0) == pgid0, "child %ld: session/group %d/%d, was %d/%d",
              n, getsid(0), getpgid(0), sid0, pgid0);
        printf("child %ld\n", n);
        pause_ms(20);
    }
}

static int after_exec(char **argv);

static volatile pid_t burst_tid;
static volatile int burst_go;

static void *burst_thread(void *arg) {
    (void)arg;
    burst_tid = gettid();
    while (!burst_go) pause_ms(1);
    return NULL;
}

static char self_path[4096];
static const char *METHODS[4] = {"fork", "vfork", "clone", "posix_spawn"};

/* The next pid the kernel hands out in this pid namespace is last + 1 (needs CAP_SYS_ADMIN
 * over the namespace, as in the crowded test); false when not allowed. */
static int set_last_pid(pid_t last) {
    FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
    if (!f) return 0;
    int ok = fprintf(f, "%d", (int)last) > 0;
    return fclose(f) == 0 && ok;
}

/* The child of clone(): writes its pid to the fd and exits 7. */
static char clone_stack[64 * 1024] __attribute__((aligned(16)));
static int clone_child(void *arg) {
    pid_t me = getpid();
    return write(*(int *)arg, &me, sizeof me) == sizeof me ? 7 : 8;
}

/* A child that writes its getpid() to fd and exits 7, made with fork, vfork, clone or
 * posix_spawn (this program again, "report FD"). */
static pid_t new_child(int method, int fd) {
    pid_t p = -1;
    if (method == 0 || method == 1) {
        p = method == 0 ? fork() : vfork();
        if (p == 0) {
            pid_t me = getpid();
            ssize_t w = write(fd, &me, sizeof me);
            _exit(w == sizeof me ? 7 : 8);
        }
    } else if (method == 2) {
        static int cfd;
        cfd = fd;
        p = clone(clone_child, clone_stack + sizeof clone_stack, SIGCHLD, &cfd);
    } else {
        char fdarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", fd);
        char *argv[] = {"ids_check", "report", fdarg, NULL};
        extern char **environ;
        /* Not /proc/self/exe: after a restart that is the restart tool. */
        if (posix_spawn(&p, self_path, NULL, NULL, argv, environ) != 0) p = -1;
    }
    return p;
}

/* New children and threads after a restart: each must get an id that names nobody else of
 * the computation (a child's getpid() equals what fork returned, and waitpid by that pid
 * reaps it, not an old process of the same virtual pid; a thread's gettid() is none of the
 * known ids, and tgkill reaches it by that id). */
static void fork_burst(pid_t pid0, pid_t child, pid_t wtid) {
    int targeted = 0;
    for (int i = 0; i < BURST; i++) {
        pthread_t th;
        burst_tid = 0;
        burst_go = 0;
        CHECK(pthread_create(&th, NULL, burst_thread, NULL) == 0, "burst thread %d", i);
        while (!burst_tid) pause_ms(1);
        pid_t bt = burst_tid;
        CHECK(bt != pid0 && bt != child && bt != wtid, "burst %d: new thread got tid %d in use", i, bt);
        CHECK(tgkill(pid0, bt, 0) == 0, "burst %d: tgkill(new thread %d)", i, bt);
        burst_go = 1;
        pthread_join(th, NULL);
        int fds[2];
        CHECK(pipe(fds) == 0, "pipe");
        /* The first four children aim at a taken pid where ns_last_pid is writable. */
        if (i < 4 && set_last_pid(pid0 - 1)) targeted++;
        int method = i % 4;
        pid_t p = new_child(method, fds[1]);
        CHECK(p > 0, "burst %s %d", METHODS[method], i);
        pid_t reported = 0;
        CHECK(read(fds[0], &reported, sizeof reported) == sizeof reported, "burst read %d", i);
        close(fds[0]);
        close(fds[1]);
        CHECK(reported == p, "burst %d: %s gave %d, the child says %d", i, METHODS[method], p, reported);
        CHECK(p != pid0 && p != child && p != wtid, "burst %d: new child got pid %d in use", i, p);
        int st = 0;
        pid_t w = 0;
        for (int k = 0; k < 2000 && w == 0; k++) {
            w = waitpid(p, &st, WNOHANG);
            if (w == 0) pause_ms(1);
        }
        CHECK(w == p && WIFEXITED(st) && WEXITSTATUS(st) == 7, "burst %d: waitpid(%d) gave %d", i, p, w);
    }
    printf("burst %d targeted %d\n", BURST, targeted);
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "exec") == 0) return after_exec(argv);
    if (argc == 3 && strcmp(argv[1], "report") == 0) {
        pid_t me = getpid();
        return write(atoi(argv[2]), &me, sizeof me) == sizeof me ? 7 : 8;
    }
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    parent_pid = getpid();
    pid_t pid0 = getpid();
    CHECK(realpath(argv[0], self_path) != NULL, "realpath %s", argv[0]);
    int burst = 0;
    sid0 = getsid(0);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "burst") == 0) burst = 1;
        if (strcmp(argv[i], "nosession") == 0) sid0 = -1;
    }
    pgid0 = getpgrp();
    set_info_handler(SIGUSR2, on_ack);
    signal(SIGUSR1, on_child); /* before the fork: no window where the child lacks it */
    sigset_t urg;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    sigset_t kept = urg;
    sigaddset(&kept, KEPT_SIG);
    sigaddset(&kept, KEPT_RT_SIG);
    pthread_sigmask(SIG_BLOCK, &kept, NULL); /* inherited by the worker: only sigtimedwait takes them */
    pid_t child = fork();
    if (child == 0) child_main();
    CHECK(child > 0, "fork");
    expected_sender = child;
    struct sigaction cur;
    CHECK(sigaction(SIGUSR2, NULL, &cur) == 0 && cur.sa_sigaction == on_ack,
          "sigaction does not report the program's handler");
    signal(WORKER_SIG, on_worker);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!worker_tid) pause_ms(1);
    pid_t wtid = worker_tid;
    printf("start pid %d child %d worker %d\n", pid0, child, wtid);
    char path[128], buf[256], want[32];
    for (long n = 1; n <= limit; n++) {
        CHECK(getpid() == pid0, "tick %ld: getpid %d, was %d", n, getpid(), pid0);
        CHECK(syscall(SYS_getpid) == pid0, "tick %ld: SYS_getpid", n);
        CHECK(gettid() == pid0 && syscall(SYS_gettid) == pid0, "tick %ld: main gettid", n);
        CHECK((sid0 < 0 || getsid(0) == sid0) && getpgrp() == pgid0 && getpgid(0) == pgid0,
              "tick %ld: session/group %d/%d, was %d/%d", n, getsid(0), getpgrp(), sid0, pgid0);
        CHECK(worker_tid == wtid, "tick %ld: worker tid changed", n);
        /* tgkill to the worker by its old tid; its handler compares gettid(). */
        long before = worker_pokes;
        CHECK(tgkill(pid0, wtid, WORKER_SIG) == 0, "tick %ld: tgkill", n);
        for (int i = 0; i < 5000 && worker_pokes == before; i++) pause_ms(1);
        CHECK(worker_pokes == before + 1, "tick %ld: tgkill did not reach the worker", n);
        /* kill to the child by its old pid; the child answers with kill(getppid()). */
        long acks0 = acks;
        CHECK(kill(child, SIGUSR1) == 0, "tick %ld: kill(child)", n);
        for (int i = 0; i < 5000 && acks == acks0; i++) pause_ms(1);
        CHECK(acks == acks0 + 1, "tick %ld: the child did not answer kill()", n);
        siginfo_t si;
        struct timespec wait_urg = {5, 0};
        int got;
        while ((got = sigtimedwait(&urg, &si, &wait_urg)) < 0 && errno == EINTR) {} /* a checkpoint */
        /* A signal pending at a checkpoint keeps its sender, at resume and at restart. */
        CHECK(ack_from == 0, "tick %ld: si_pid of the answer %d, child %d", n, ack_from, child);
        CHECK(got == SIGURG && si.si_pid == child,
              "tick %ld: sigtimedwait gave si_pid %d, child %d", n, si.si_pid, child);
        int st;
        pid_t w = waitpid(child, &st, WNOHANG);
        CHECK(w == 0, "tick %ld: waitpid(child) gave %d", n, w);
        /* Other calls naming the child by pid: its nice value, set (never lowered, so no privilege
         * needed) and read back. */
        CHECK(setpriority(PRIO_PROCESS, child, n < 2 ? (int)n : 2) == 0, "tick %ld: setpriority", n);
        errno = 0;
        CHECK(getpriority(PRIO_PROCESS, child) == (n < 2 ? n : 2) && errno == 0, "tick %ld: getpriority", n);
        CHECK(sched_getscheduler(child) == SCHED_OTHER, "tick %ld: sched_getscheduler", n);
        struct rlimit rl;
        CHECK(prlimit(child, RLIMIT_NOFILE, NULL, &rl) == 0, "tick %ld: prlimit", n);
        /* /proc paths by the old ids. */
        ssize_t l = readlink("/proc/self", buf, sizeof buf - 1);
        CHECK(l > 0, "tick %ld: readlink /proc/self", n);
        buf[l] = 0;
        snprintf(want, sizeof want, "%d", pid0);
        CHECK(strcmp(buf, want) == 0, "tick %ld: /proc/self is %s, pid %d", n, buf, pid0);
        snprintf(path, sizeof path, "/proc/%d/task/%d/comm", pid0, wtid);
        CHECK(read_file(path, buf, sizeof buf) == 0 && strcmp(buf, "idsworker") == 0,
              "tick %ld: %s", n, path);
        snprintf(path, sizeof path, "/proc/%d/comm", child);
        CHECK(read_file(path, buf, sizeof buf) == 0 && strstr("ids_check", buf) != NULL,
              "tick %ld: %s gave '%s'", n, path, buf);
        snprintf(path, sizeof path, "/proc/%d", child);
        struct stat sb;
        CHECK(stat(path, &sb) == 0 && access(path, F_OK) == 0, "tick %ld: stat %s", n, path);
        snprintf(path, sizeof path, "/proc/%d/task", pid0);
        DIR *d = opendir(path);
        CHECK(d != NULL, "tick %ld: opendir %s", n, path);
        closedir(d);
        snprintf(path, sizeof path, "/proc/%d/status", pid0);
        int fd = open(path, O_RDONLY);
        CHECK(fd >= 0, "tick %ld: open %s", n, path);
        close(fd);
        printf("tick %ld real %ld\n", n, real_pid());
        pause_ms(10);
    }
    /* The child's two signals, pending since its start. */
    siginfo_t si;
    struct timespec wait_kept = {5, 0};
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, KEPT_SIG);
    CHECK(sigtimedwait(&one, &si, &wait_kept) == KEPT_SIG && si.si_pid == child && si.si_code == SI_USER,
          "kept signal: si_pid %d code %d, child %d", si.si_pid, si.si_code, child);
    sigemptyset(&one);
    sigaddset(&one, KEPT_RT_SIG);
    CHECK(sigtimedwait(&one, &si, &wait_kept) == KEPT_RT_SIG && si.si_pid == child &&
              si.si_code == SI_QUEUE && si.si_value.sival_int == 4242,
          "kept rt signal: si_pid %d code %d value %d, child %d", si.si_pid, si.si_code,
          si.si_value.sival_int, child);
    printf("kept signals from %d\n", child);
    if (burst) fork_burst(pid0, child, wtid);
    /* The same program again through exec: its ids and its child must still be the same. */
    char a1[16], a2[16], a3[16], a4[16];
    snprintf(a1, sizeof a1, "%d", pid0);
    snprintf(a2, sizeof a2, "%d", child);
    snprintf(a3, sizeof a3, "%d", sid0);
    snprintf(a4, sizeof a4, "%d", pgid0);
    execl(argv[0], argv[0], "exec", a1, a2, a3, a4, (char *)NULL);
    CHECK(0, "exec %s", argv[0]);
}

/* After exec: "exec PID CHILD SID PGID". */
static int after_exec(char **argv) {
    pid_t pid0 = atoi(argv[2]), child = atoi(argv[3]);
    CHECK(getpid() == pid0, "after exec: getpid %d, was %d", getpid(), pid0);
    CHECK((atoi(argv[4]) < 0 || getsid(0) == atoi(argv[4])) && getpgrp() == atoi(argv[5]),
          "after exec: session/group");
    char buf[64], want[32];
    ssize_t l = readlink("/proc/self", buf, sizeof buf - 1);
    CHECK(l > 0, "after exec: readlink /proc/self");
    buf[l] = 0;
    snprintf(want, sizeof want, "%d", pid0);
    CHECK(strcmp(buf, want) == 0, "after exec: /proc/self is %s, pid %d", buf, pid0);
    int st;
    CHECK(waitpid(child, &st, WNOHANG) == 0, "after exec: waitpid(child)");
    set_info_handler(SIGCHLD, on_chld);
    CHECK(kill(child, SIGTERM) == 0, "kill(child, SIGTERM)");
    pid_t w = waitpid(child, &st, 0);
    CHECK(w == child && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "reaping the child: %d", w);
    for (int i = 0; i < 5000 && chld_from == 0; i++) pause_ms(1);
    CHECK(chld_from == child, "SIGCHLD si_pid %d, child %d", chld_from, child);
    printf("done\n");
    return 0;
}
