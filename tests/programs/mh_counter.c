/* A counter for the multi-host tests. Usage: mh_counter OUT [MILLISECONDS]
 * Appends "N HOST" to OUT every interval (default 20 ms): N counts up by one, HOST is the
 * host the process runs on at that moment, so a file shows where each stretch ran. Between
 * lines it keeps 1 MiB of memory in a state that depends on N and checks it before each step,
 * so memory restored wrong (or from another process) shows as a "CORRUPT" line and exit 3. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define WORDS (1u << 18)
static uint32_t mem[WORDS];

static uint32_t expected(uint32_t i, uint64_t n) {
    return i * 2654435761u + (uint32_t)n * 40503u + (uint32_t)(n >> 32);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: mh_counter OUT [MILLISECONDS]\n");
        return 2;
    }
    long ms = argc > 2 ? atol(argv[2]) : 20;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    for (uint32_t i = 0; i < WORDS; i++) mem[i] = expected(i, 0);
    for (uint64_t n = 0;;) {
        for (uint32_t i = 0; i < WORDS; i++) {
            if (mem[i] != expected(i, n)) {
                char line[128];
                int len = snprintf(line, sizeof line, "CORRUPT word %u at step %llu\n", i,
                                   (unsigned long long)n);
                write(fd, line, (size_t)len);
                return 3;
            }
        }
        n++;
        for (uint32_t i = 0; i < WORDS; i++) mem[i] = expected(i, n);
        struct utsname u;
        uname(&u);
        char line[128];
        int len = snprintf(line, sizeof line, "%llu %s\n", (unsigned long long)n, u.nodename);
        if (write(fd, line, (size_t)len) != len) return 4;
        nanosleep(&ts, NULL);
    }
}
