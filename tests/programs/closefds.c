/* Writes to stdout and stderr, then closes fd 2 (and, with an argument, fd 1 too) before
 * exiting 0: the runtime must not depend on the program's stdio fds. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    printf("out\n");
    fflush(stdout);
    fprintf(stderr, "err\n");
    close(2);
    if (argc > 1) close(1);
    return 0;
}
