/* OpenMP over checkpoint/restart cycles (built with -fopenmp): every tick a parallel reduction
 * on 4 threads must equal the same sum computed serially, and the team must really have 4
 * threads. Prints "tick N S" (S: the reduction), then "total T" and "done";
 * "FAIL tick N: <what>" and exit 3 on a mismatch. */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void fail(long n, const char *what) {
    printf("FAIL tick %ld: %s\n", n, what);
    exit(3);
}

static unsigned long long term(long n, long i) { return (unsigned long long)((i * 2654435761UL + n) % 1000003); }

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    unsigned long long total = 0;
    for (long n = 1; n <= limit; n++) {
        unsigned long long par = 0, ser = 0;
        int team = 0;
#pragma omp parallel for reduction(+ : par) num_threads(4)
        for (long i = 0; i < 400000; i++) {
            if (i == 0) team = omp_get_num_threads();
            par += term(n, i);
        }
        for (long i = 0; i < 400000; i++) ser += term(n, i);
        if (team != 4) fail(n, "OpenMP team is not 4 threads");
        if (par != ser) fail(n, "parallel reduction differs from the serial sum");
        total += par;
        printf("tick %ld %llu\n", n, par);
        struct timespec ts = {0, 20 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    printf("total %llu\n", total);
    printf("done\n");
    return 0;
}
