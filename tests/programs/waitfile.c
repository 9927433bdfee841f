/* Waits, without forking or allocating, until a file exists, then exits with the given code.
 * Usage: waitfile PATH [EXIT_CODE]. Prints "waiting <pid>" first so tests know it started. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: waitfile PATH [EXIT_CODE]\n");
        return 2;
    }
    printf("waiting %d\n", (int)getpid());
    fflush(stdout);
    struct timespec ts = {0, 20 * 1000 * 1000};
    while (access(argv[1], F_OK) != 0) {
        nanosleep(&ts, NULL);
    }
    return argc > 2 ? atoi(argv[2]) : 0;
}
