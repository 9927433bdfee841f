/* A counter with a name, for several unrelated programs of one computation: prints
 * "<TAG> N" every 20 ms. Usage: procs_tagged TAG [LIMIT] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    long limit = argc > 2 ? atol(argv[2]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (long n = 1; n <= limit; n++) {
        printf("%s %ld\n", argv[1], n);
        struct timespec left = ts;
        while (nanosleep(&left, &left) != 0 && errno == EINTR) {}
    }
    printf("%s done\n", argv[1]);
    return 0;
}
