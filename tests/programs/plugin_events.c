/* Drives the lifecycle events for the plugin tests: starts and joins a thread, forks a child
 * that execv()s /bin/true (execl is not wrapped yet), waits for it, and exits normally. */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void *thread_main(void *arg) { return arg; }

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, NULL) != 0) return 10;
  if (pthread_join(t, NULL) != 0) return 11;
  pid_t child = fork();
  if (child < 0) return 12;
  if (child == 0) {
    char *const args[] = {"true", NULL};
    execv("/bin/true", args);
    _exit(13);
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child) return 14;
  printf("child status %d\n", status);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 15;
}
