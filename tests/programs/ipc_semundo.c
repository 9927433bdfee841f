/* SysV semaphore undo adjustments (SEM_UNDO) over checkpoints and restarts. One set of 6:
 *   LOCK (starts 1)  H2 takes it with SEM_UNDO and exits at the end without releasing it;
 *   COUNT (0)        H2 adds 5 with SEM_UNDO;
 *   STOP (0)         the parent raises it at the end;
 *   PRE (10)         H1 takes 2 with SEM_UNDO, then forks H2 (which must not inherit that);
 *   RESET (7)        H2 takes 1 with SEM_UNDO, then sets it back to 7 with SETVAL (which
 *                    clears H2's adjustment, as the kernel does);
 *   GATE (0)         H1 waits on it (-1, SEM_UNDO) through every checkpoint; the parent
 *                    opens it at the end, H1 gets it and exits without giving it back.
 * H2 then execs this program again ("exec-holder"): the kernel keeps its adjustments over
 * exec, and so must the checkpoints after it.
 * Every tick the parent checks the values (LOCK 0, COUNT 5, PRE 8, RESET 7, GATE 0). At the end,
 * after H1 and H2 exited, the kernel must have undone their adjustments: the parent takes
 * LOCK without blocking, and finds COUNT 0, PRE 10, RESET 7, GATE 1. argv: limit key */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { LOCK, COUNT, STOP, PRE, RESET, GATE, NSEMS };

static int semid;
static long n;

static void nap(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

#define FAIL(...) do { printf("FAIL tick %ld: ", n); printf(__VA_ARGS__); printf("\n"); exit(3); } while (0)

static void op(int num, int delta, int flags) {
    struct sembuf b = {(unsigned short)num, (short)delta, (short)flags};
    while (semop(semid, &b, 1) != 0) {
        if (errno != EINTR) FAIL("semop %d %+d: %s", num, delta, strerror(errno));
    }
}

static int val(int num) { return semctl(semid, num, GETVAL); }

static void expect(const char *when, int lock, int count, int pre, int reset, int gate) {
    int v[NSEMS];
    for (int i = 0; i < NSEMS; i++) v[i] = val(i);
    if (v[LOCK] != lock || v[COUNT] != count || v[PRE] != pre || v[RESET] != reset || v[GATE] != gate)
        FAIL("%s: LOCK %d COUNT %d PRE %d RESET %d GATE %d, want %d %d %d %d %d", when, v[LOCK],
             v[COUNT], v[PRE], v[RESET], v[GATE], lock, count, pre, reset, gate);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[1], "exec-holder") == 0) {
        semid = semget(atoi(argv[2]), 0, 0);
        if (semid < 0) FAIL("exec-holder semget: %s", strerror(errno));
        while (val(STOP) == 0) nap(5);
        return 0; /* without releasing LOCK */
    }
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    key_t key = argc > 2 ? atoi(argv[2]) : 4343;
    semid = semget(key, NSEMS, IPC_CREAT | IPC_EXCL | 0600);
    if (semid < 0) FAIL("semget: %s", strerror(errno));
    unsigned short init[NSEMS] = {1, 0, 0, 10, 7, 0};
    if (semctl(semid, 0, SETALL, init) != 0) FAIL("SETALL: %s", strerror(errno));
    pid_t h1 = fork();
    if (h1 == 0) {
        op(PRE, -2, SEM_UNDO);
        pid_t h2 = fork();
        if (h2 == 0) {
            op(LOCK, -1, SEM_UNDO);
            op(COUNT, 5, SEM_UNDO);
            op(RESET, -1, SEM_UNDO);
            if (semctl(semid, RESET, SETVAL, 7) != 0) FAIL("SETVAL: %s", strerror(errno));
            char k[32];
            snprintf(k, sizeof k, "%d", (int)key);
            execl("/proc/self/exe", argv[0], "exec-holder", k, (char *)NULL);
            FAIL("exec: %s", strerror(errno));
        }
        op(GATE, -1, SEM_UNDO); /* blocks until the parent opens the gate */
        if (waitpid(h2, NULL, 0) != h2) FAIL("waitpid h2: %s", strerror(errno));
        return 0;
    }
    /* Wait until both holders took what they hold. */
    for (int i = 0; val(LOCK) != 0 || val(COUNT) != 5 || val(PRE) != 8; i++) {
        if (i > 2000) FAIL("the holders did not start");
        nap(5);
    }
    for (n = 1; n <= limit; n++) {
        expect("running", 0, 5, 8, 7, 0);
        printf("tick %ld\n", n);
        nap(20);
    }
    op(STOP, 1, 0);
    op(GATE, 1, 0);
    int status;
    if (waitpid(h1, &status, 0) != h1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("h1 did not exit cleanly (status %#x)", status);
    /* A second process acquires the lock the dead holder never released: must not block. */
    struct sembuf take = {LOCK, -1, IPC_NOWAIT};
    if (semop(semid, &take, 1) != 0) FAIL("LOCK is still held after its holder exited: %s", strerror(errno));
    expect("after the holders exited", 0, 0, 10, 7, 1);
    semctl(semid, 0, IPC_RMID);
    printf("done\n");
    return 0;
}
