/* A counter that checks its own state: prints "tick N sum S" every 20 ms, where S is the sum
 * of an array it rewrites each tick (heap and stack data), and aborts with a message if memory
 * ever disagrees with the counter. After a restart the numbers must continue exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    unsigned long *heap = malloc(4096 * sizeof *heap);
    unsigned long stackbuf[512];
    if (!heap) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (long i = 0; i < 4096; i++) heap[i] = 0;
    for (long i = 0; i < 512; i++) stackbuf[i] = 0;
    for (long n = 1; n <= limit; n++) {
        unsigned long sum = 0;
        for (long i = 0; i < 4096; i++) {
            heap[i] += (unsigned long)i;
            sum += heap[i];
        }
        for (long i = 0; i < 512; i++) {
            stackbuf[i] += 1;
            sum += stackbuf[i];
        }
        /* heap[i] == n*i and stackbuf[i] == n: the sum is known in closed form. */
        unsigned long want = (unsigned long)n * (4095UL * 4096UL / 2) + (unsigned long)n * 512UL;
        if (sum != want) {
            printf("CORRUPT at %ld: sum %lu want %lu\n", n, sum, want);
            return 3;
        }
        printf("tick %ld sum %lu\n", n, sum);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("done\n");
    return 0;
}
