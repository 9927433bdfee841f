/* MAP_SHARED memory between a parent and its forked child, of three kinds: a regular file
 * (ipc_shared.dat in the working directory), a POSIX shm_open segment that keeps its name and
 * one that was shm_unlink'ed while mapped. The child increments a counter in each mapping;
 * the parent prints "tick N", fails if any counter stops growing, and checks that the file's
 * bytes (read with pread) equal the mapping's. At the end the parent stops the child through
 * the file mapping, reaps it and prints "done".
 * argv: limit [shm name suffix] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared { volatile long counter; volatile int stop; volatile long echo; };

static void nap(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static struct shared *map_fd(int fd) {
    if (fd < 0 || ftruncate(fd, 4096) != 0) return NULL;
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    char name[64], gone[64];
    snprintf(name, sizeof name, "/ipc_shmfile_%s", argc > 2 ? argv[2] : "x");
    snprintf(gone, sizeof gone, "/ipc_shmfile_%s_gone", argc > 2 ? argv[2] : "x");
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ffd = open("ipc_shared.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
    struct shared *f = map_fd(ffd);
    int sfd = shm_open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    struct shared *s = map_fd(sfd);
    int gfd = shm_open(gone, O_RDWR | O_CREAT | O_TRUNC, 0600);
    struct shared *g = map_fd(gfd);
    if (!f || !s || !g) { printf("FAIL setup: %s\n", strerror(errno)); return 2; }
    shm_unlink(gone);
    close(gfd);
    pid_t child = fork();
    if (child == 0) {
        while (!f->stop) {
            f->counter++; s->counter++; g->counter++;
            f->echo = f->counter;
            nap(2);
        }
        return 0;
    }
    long last[3] = {-1, -1, -1}, still[3] = {0, 0, 0};
    struct shared *all[3] = {f, s, g};
    const char *what[3] = {"file", "shm_open", "unlinked shm"};
    for (long n = 1; n <= limit; n++) {
        for (int i = 0; i < 3; i++) {
            long c = all[i]->counter;
            if (c != last[i]) still[i] = 0;
            else if (++still[i] >= 100) {
                printf("FAIL tick %ld: the %s counter stopped at %ld\n", n, what[i], c);
                return 3;
            }
            last[i] = c;
        }
        struct shared disk;
        /* The child may write between our reads: compare with its echo field too. */
        long before = f->echo;
        if (pread(ffd, &disk, sizeof disk, 0) != sizeof disk) { printf("FAIL tick %ld: pread\n", n); return 3; }
        long after = f->echo;
        if (disk.echo < before || disk.echo > after) {
            printf("FAIL tick %ld: file holds %ld, mapping %ld..%ld\n", n, disk.echo, before, after);
            return 3;
        }
        struct shared viafd;
        if (pread(sfd, &viafd, sizeof viafd, 0) != sizeof viafd || viafd.counter < last[1]) {
            printf("FAIL tick %ld: the shm_open fd reads %ld, mapping %ld\n", n, viafd.counter, last[1]);
            return 3;
        }
        printf("tick %ld\n", n);
        nap(20);
    }
    f->stop = 1;
    if (wait(NULL) < 0) { printf("FAIL: wait\n"); return 3; }
    shm_unlink(name);
    printf("done\n");
    return 0;
}
