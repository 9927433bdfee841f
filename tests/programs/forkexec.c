/* Forks N children (default 2) that exec `waitfile PATH`, waits for them and exits with the
 * number of children that exited 0. Usage: forkexec WAITFILE_EXE PATH [N]. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: forkexec WAITFILE_EXE PATH [N]\n");
        return 100;
    }
    int n = argc > 3 ? atoi(argv[3]) : 2;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 101;
        }
        if (pid == 0) {
            execl(argv[1], "waitfile", argv[2], (char *)NULL);
            perror("execl");
            _exit(102);
        }
    }
    int ok = 0, status;
    while (wait(&status) > 0) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
    }
    printf("children ok: %d\n", ok);
    return ok;
}
