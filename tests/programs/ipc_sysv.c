/* SysV IPC between a parent and its forked child, checked on every tick:
 * - shared memory: a segment with a key (attached before the fork) where the child increments
 *   a counter the parent must see grow; a second, IPC_PRIVATE segment marked IPC_RMID while
 *   attached, which must stay shared (the child mirrors the counter there);
 * - a semaphore set of 3: sem 0 counts the ticks (the parent adds 1 per tick), sem 1 holds 7
 *   and sem 2 holds 1000; the parent checks the values with GETVAL;
 * - a message queue: the parent keeps 5 messages queued, of types 1..5 with text "m<type>-<n>"
 *   where n is the tick that sent it; each tick it receives the oldest (type 0 = any) and
 *   checks the type and text, then sends a new one, so the order and types must survive.
 * - a third segment is written once at start and detached by everyone: its bytes (no image
 *   maps it) must be there at the end, and the IPC_RMID'ed segment must still be marked for
 *   removal.
 * The child exits when the parent sets the stop word; the parent reaps it, removes the
 * objects and prints "done". argv: limit key */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared { volatile long counter; volatile int stop; };
struct msg { long mtype; char text[32]; };

static void nap(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

#define FAIL(...) do { printf("FAIL tick %ld: ", n); printf(__VA_ARGS__); printf("\n"); exit(3); } while (0)

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    key_t key = argc > 2 ? atoi(argv[2]) : 4242;
    long n = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int shmid = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
    int privid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    int semid = semget(key, 3, IPC_CREAT | IPC_EXCL | 0600);
    int msgid = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    int loneid = shmget(key + 1, 3 * 4096 + 100, IPC_CREAT | IPC_EXCL | 0640);
    if (shmid < 0 || privid < 0 || semid < 0 || msgid < 0 || loneid < 0) FAIL("setup: %s", strerror(errno));
    unsigned char *lone = shmat(loneid, NULL, 0);
    if (lone == (void *)-1) FAIL("shmat lone: %s", strerror(errno));
    for (int i = 0; i < 3 * 4096 + 100; i++) lone[i] = (unsigned char)(i * 7 + 3);
    shmdt(lone);
    struct shared *s = shmat(shmid, NULL, 0);
    volatile long *mirror = shmat(privid, NULL, 0);
    if (s == (void *)-1 || mirror == (void *)-1) FAIL("shmat: %s", strerror(errno));
    shmctl(privid, IPC_RMID, NULL);
    unsigned short init[3] = {0, 7, 1000};
    semctl(semid, 0, SETALL, init);
    struct msg m;
    for (int t = 1; t <= 5; t++) {
        m.mtype = t;
        snprintf(m.text, sizeof m.text, "m%d-%d", t, 0);
        msgsnd(msgid, &m, sizeof m.text, 0);
    }
    pid_t child = fork();
    if (child == 0) {
        while (!s->stop) { s->counter++; *mirror = s->counter; nap(2); }
        shmdt((void *)s);
        return 0;
    }
    long last = -1, still = 0, next_type = 1, sent_at[6] = {0, 0, 0, 0, 0, 0};
    for (n = 1; n <= limit; n++) {
        long c = s->counter;
        if (c != last) still = 0;
        else if (++still >= 100) FAIL("the shared counter stopped at %ld", c);
        last = c;
        long mc = *mirror;
        if (mc > s->counter || mc + 100000 < s->counter) FAIL("removed segment holds %ld, counter %ld", mc, s->counter);

        struct sembuf op = {0, 1, 0};
        if (semop(semid, &op, 1) != 0) FAIL("semop: %s", strerror(errno));
        int v0 = semctl(semid, 0, GETVAL), v1 = semctl(semid, 1, GETVAL), v2 = semctl(semid, 2, GETVAL);
        if (v0 != n || v1 != 7 || v2 != 1000) FAIL("semaphores %d %d %d, want %ld 7 1000", v0, v1, v2, n);

        ssize_t r = msgrcv(msgid, &m, sizeof m.text, 0, IPC_NOWAIT);
        char want[32];
        snprintf(want, sizeof want, "m%ld-%ld", next_type, sent_at[next_type]);
        if (r != sizeof m.text || m.mtype != next_type || strcmp(m.text, want) != 0)
            FAIL("message type %ld '%s' (%zd bytes), want type %ld '%s'", m.mtype, r > 0 ? m.text : "", r, next_type, want);
        sent_at[next_type] = n;
        snprintf(m.text, sizeof m.text, "m%ld-%ld", next_type, n);
        if (msgsnd(msgid, &m, sizeof m.text, IPC_NOWAIT) != 0) FAIL("msgsnd: %s", strerror(errno));
        next_type = next_type % 5 + 1;
        printf("tick %ld\n", n);
        nap(20);
    }
    s->stop = 1;
    if (wait(NULL) < 0) FAIL("wait");
    lone = shmat(loneid, NULL, SHM_RDONLY);
    if (lone == (void *)-1) FAIL("shmat lone at the end: %s", strerror(errno));
    for (int i = 0; i < 3 * 4096 + 100; i++)
        if (lone[i] != (unsigned char)(i * 7 + 3)) FAIL("detached segment byte %d is %d", i, lone[i]);
    struct shmid_ds ds;
    if (shmctl(loneid, IPC_STAT, &ds) != 0 || ds.shm_segsz != 3 * 4096 + 100 || (ds.shm_perm.mode & 0777) != 0640)
        FAIL("detached segment size %zu mode %o", (size_t)ds.shm_segsz, ds.shm_perm.mode);
    shmdt(lone);
    shmctl(loneid, IPC_RMID, NULL);
    if (shmctl(privid, IPC_STAT, &ds) != 0 || !(ds.shm_perm.mode & SHM_DEST))
        FAIL("the removed segment is no longer marked for removal (mode %o)", ds.shm_perm.mode);
    shmdt((void *)s);
    shmdt((void *)mirror);
    shmctl(shmid, IPC_RMID, NULL);
    semctl(semid, 0, IPC_RMID);
    msgctl(msgid, IPC_RMID, NULL);
    printf("done\n");
    return 0;
}
