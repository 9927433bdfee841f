/* Counts forever, one line per interval (default 1 s), so a restart visibly carries on from
 * where the checkpoint was taken. Usage: counter [MILLISECONDS]. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 1000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    for (unsigned long i = 1;; i++) {
        printf("count %lu\n", i);
        fflush(stdout);
        nanosleep(&ts, NULL);
    }
}
