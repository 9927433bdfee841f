/* Example plugin: a virtual id for SysV semaphore sets, whose kernel ids change at restart.
 *
 * The program gets a virtual id from semget(IPC_PRIVATE, ...) (the real id itself at first,
 * so nothing looks different until a restart). At PRECHECKPOINT the plugin saves every set's
 * values in its image section; at RESTART it creates a new set with the same values and points
 * the virtual id at the new real id (dmtcp_vid_update). semop/semctl translate on every call.
 * The table lives in the runtime (dmtcp_vid_*) and is saved with the process.
 *
 * Build: cc -shared -fPIC -I include -o libsem_vid.so sem_vid.c -ldl
 * Use:   dmtcp_launch --with-plugin ./libsem_vid.so ./prog
 *
 * Only private sets (IPC_PRIVATE) are virtualized: a keyed set is shared with processes
 * outside the computation and keeps its identity on its own. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>

#include "dmtcp.h"

#define TABLE "sysv-sem"
#define MAX_SETS 32
#define MAX_SEMS 64

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

static int (*real_semget)(key_t, int, int);
static int (*real_semctl)(int, int, int, ...);
static int (*real_semop)(int, struct sembuf *, size_t);

/* What the image section holds per set; the values are filled at PRECHECKPOINT. */
struct saved_set {
  int64_t virt;
  int32_t nsems;
  int32_t mode;
  unsigned short values[MAX_SEMS];
};
static struct saved_set sets[MAX_SETS];

static void resolve(void) {
  if (real_semget) return;
  real_semget = (int (*)(key_t, int, int))dlsym(RTLD_NEXT, "semget");
  real_semctl = (int (*)(int, int, int, ...))dlsym(RTLD_NEXT, "semctl");
  real_semop = (int (*)(int, struct sembuf *, size_t))dlsym(RTLD_NEXT, "semop");
  if (!real_semget || !real_semctl || !real_semop) {
    fprintf(stderr, "sem_vid: cannot resolve the SysV semaphore functions\n");
    abort();
  }
}

static int to_real(int id) {
  int64_t r = dmtcp_vid_to_real(TABLE, id);
  return r >= 0 ? (int)r : id; /* not ours: pass through */
}

int semget(key_t key, int nsems, int flags) {
  resolve();
  int real = real_semget(key, nsems, flags);
  if (real < 0 || key != IPC_PRIVATE || nsems > MAX_SEMS) return real;
  int64_t virt = dmtcp_vid_register(TABLE, real);
  for (int i = 0; i < MAX_SETS; i++) {
    if (sets[i].nsems == 0) {
      sets[i].virt = virt;
      sets[i].nsems = nsems;
      sets[i].mode = flags & 0777;
      break;
    }
  }
  return (int)virt;
}

int semop(int id, struct sembuf *ops, size_t n) {
  resolve();
  return real_semop(to_real(id), ops, n);
}

int semctl(int id, int num, int cmd, ...) {
  resolve();
  union semun arg = {0};
  va_list ap;
  va_start(ap, cmd);
  switch (cmd) {
    case SETVAL: case GETALL: case SETALL: case IPC_STAT: case IPC_SET: case IPC_INFO:
    case SEM_INFO: case SEM_STAT:
      arg = va_arg(ap, union semun);
      break;
    default:
      break;
  }
  va_end(ap);
  int r = real_semctl(to_real(id), num, cmd, arg);
  if (r == 0 && cmd == IPC_RMID) {
    dmtcp_vid_unregister(TABLE, id);
    for (int i = 0; i < MAX_SETS; i++)
      if (sets[i].nsems && sets[i].virt == id) sets[i].nsems = 0;
  }
  return r;
}

/* Frozen window: semctl is a system call; the section copy is the runtime's memory. */
static void save_all(void) {
  for (int i = 0; i < MAX_SETS; i++) {
    if (!sets[i].nsems) continue;
    union semun arg = {.array = sets[i].values};
    real_semctl(to_real((int)sets[i].virt), 0, GETALL, arg);
  }
  dmtcp_plugin_save("sem-vid", sets, sizeof sets);
}

static void recreate_all(void) {
  static struct saved_set saved[MAX_SETS];
  if (dmtcp_plugin_load("sem-vid", saved, sizeof saved) != (ssize_t)sizeof saved) {
    dmtcp_log(DMTCP_LOG_ERROR, "sem-vid: no saved semaphore sets in the image");
    return;
  }
  for (int i = 0; i < MAX_SETS; i++) {
    if (!saved[i].nsems) continue;
    int real = real_semget(IPC_PRIVATE, saved[i].nsems, IPC_CREAT | saved[i].mode);
    char line[128];
    if (real < 0) {
      snprintf(line, sizeof line, "sem-vid: cannot recreate set %lld", (long long)saved[i].virt);
      dmtcp_log(DMTCP_LOG_ERROR, line);
      continue;
    }
    union semun arg = {.array = saved[i].values};
    real_semctl(real, 0, SETALL, arg);
    dmtcp_vid_update(TABLE, saved[i].virt, real);
    snprintf(line, sizeof line, "sem-vid: virtual %lld -> real %d", (long long)saved[i].virt, real);
    dmtcp_log(DMTCP_LOG_INFO, line);
  }
}

static void hook(DmtcpEvent_t event, const DmtcpEventData_t *data) {
  (void)data;
  switch (event) {
    case DMTCP_EVENT_INIT: resolve(); break;
    case DMTCP_EVENT_PRECHECKPOINT: save_all(); break;
    case DMTCP_EVENT_RESTART: recreate_all(); break;
    default: break;
  }
}

DMTCP_DECL_PLUGIN("sem-vid", "virtual ids for SysV semaphore sets, recreated at restart", hook)
