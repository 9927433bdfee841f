/* Example program for the sem-vid plugin: a private semaphore set of two semaphores; sem 0
 * stays 5, sem 1 counts the ticks. Every 20 ms: "tick <n> id <semid> v0 <value0> v1 <value1>".
 * After a restart the id and the values must continue; any failing call prints "FAIL". */
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int id = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
  if (id < 0) {
    perror("FAIL semget");
    return 1;
  }
  union semun five = {.val = 5};
  if (semctl(id, 0, SETVAL, five) != 0) perror("FAIL setval");
  for (long n = 1;; n++) {
    struct sembuf up = {.sem_num = 1, .sem_op = 1, .sem_flg = 0};
    if (semop(id, &up, 1) != 0) {
      printf("FAIL semop %ld\n", n);
      return 2;
    }
    int v0 = semctl(id, 0, GETVAL), v1 = semctl(id, 1, GETVAL);
    printf("tick %ld id %d v0 %d v1 %d\n", n, id, v0, v1);
    if (v0 != 5 || v1 != n) printf("CORRUPT v0 %d v1 %d at %ld\n", v0, v1, n);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}
