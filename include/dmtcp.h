/* dmtcp.h: the program's own interface to the checkpoint runtime, and the plugin ABI.
 *
 * Every function is declared weak: a program built against this header still links and runs
 * without the runtime, and the macros below then answer DMTCP_NOT_PRESENT or 0. Under
 * dmtcp_launch, libdmtcp.so (preloaded) provides the definitions.
 */
#ifndef DMTCP_H
#define DMTCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMTCP_AFTER_CHECKPOINT 1
#define DMTCP_AFTER_RESTART 2
#define DMTCP_NOT_PRESENT 3

/* ---- The program's API ------------------------------------------------------------------ */

/* 1 when running under the checkpoint runtime. */
int dmtcp_is_enabled(void) __attribute__((weak));
/* Checkpoints the whole computation now; returns DMTCP_AFTER_CHECKPOINT when the checkpoint is
 * written and the program continues, DMTCP_AFTER_RESTART when it continues after a restart from
 * that checkpoint, -1 if the checkpoint failed. */
int dmtcp_checkpoint(void) __attribute__((weak));
/* Delay checkpoints: a checkpoint requested in between waits until the matching enable.
 * Sections nest per thread. Return 1 on success, 0 without the runtime. */
int dmtcp_disable_ckpt(void) __attribute__((weak));
int dmtcp_enable_ckpt(void) __attribute__((weak));
/* Number of peers and whether the computation is running, from the coordinator. 1 on success. */
int dmtcp_get_coordinator_status(int *num_peers, int *is_running) __attribute__((weak));
/* Checkpoints written and restarts done by this process. 1 on success. */
int dmtcp_get_local_status(int *num_checkpoints, int *num_restarts) __attribute__((weak));
/* Current checkpoint generation of the computation. */
int dmtcp_get_generation(void) __attribute__((weak));
/* Strings owned by the runtime; valid until the next call from the same thread. */
const char *dmtcp_get_ckpt_filename(void) __attribute__((weak));
const char *dmtcp_get_ckpt_dir(void) __attribute__((weak));
const char *dmtcp_get_uniquepid_str(void) __attribute__((weak));
const char *dmtcp_get_computation_id_str(void) __attribute__((weak));
/* The signal the runtime uses internally to freeze threads. */
int dmtcp_get_ckpt_signal(void) __attribute__((weak));

#define dmtcp_is_enabled() (dmtcp_is_enabled ? dmtcp_is_enabled() : 0)
#define dmtcp_checkpoint() (dmtcp_checkpoint ? dmtcp_checkpoint() : DMTCP_NOT_PRESENT)
#define dmtcp_disable_ckpt() (dmtcp_disable_ckpt ? dmtcp_disable_ckpt() : 0)
#define dmtcp_enable_ckpt() (dmtcp_enable_ckpt ? dmtcp_enable_ckpt() : 0)
#define dmtcp_get_coordinator_status(n, r) \
  (dmtcp_get_coordinator_status ? dmtcp_get_coordinator_status(n, r) : 0)
#define dmtcp_get_local_status(c, r) (dmtcp_get_local_status ? dmtcp_get_local_status(c, r) : 0)
#define dmtcp_get_generation() (dmtcp_get_generation ? dmtcp_get_generation() : -1)
#define dmtcp_get_ckpt_filename() (dmtcp_get_ckpt_filename ? dmtcp_get_ckpt_filename() : NULL)
#define dmtcp_get_ckpt_dir() (dmtcp_get_ckpt_dir ? dmtcp_get_ckpt_dir() : NULL)
#define dmtcp_get_uniquepid_str() (dmtcp_get_uniquepid_str ? dmtcp_get_uniquepid_str() : NULL)
#define dmtcp_get_computation_id_str() \
  (dmtcp_get_computation_id_str ? dmtcp_get_computation_id_str() : NULL)
#define dmtcp_get_ckpt_signal() (dmtcp_get_ckpt_signal ? dmtcp_get_ckpt_signal() : -1)


/* ==== The plugin ABI ========================================================================
 *
 * A plugin is a shared library named in `dmtcp_launch --with-plugin LIB[:LIB...]` (or
 * DMTCP_PLUGIN). It exports one function, `dmtcp_plugin_descriptor`, returning a static
 * descriptor; the runtime calls its event hook for every event below. The functions after the
 * events are provided by libdmtcp.so (which is always loaded when a plugin's hooks run).
 * See docs/plugins.md for the order of events and what each service may be called from.
 */

#define DMTCP_PLUGIN_API_VERSION 1

/* Event numbers are stable: new events are only appended. "Pre" events (INIT, ATFORK_PREPARE,
 * PRE_EXEC, THREAD_START, PRESUSPEND, PRECHECKPOINT) run in registration order: DMTCP_PLUGIN
 * order, then the runtime's built-in subsystems. The others run in the reverse order. */
typedef enum DmtcpEvent {
  DMTCP_EVENT_INIT = 1,            /* runtime joined the coordinator, before main() */
  DMTCP_EVENT_EXIT = 2,            /* normal process exit (atexit) */
  DMTCP_EVENT_ATFORK_PREPARE = 3,  /* in the parent, before fork */
  DMTCP_EVENT_ATFORK_PARENT = 4,   /* in the parent, after fork */
  DMTCP_EVENT_ATFORK_CHILD = 5,    /* in the child, after it joined; data->pid = parent */
  DMTCP_EVENT_PRE_EXEC = 6,        /* before exec; data->path = program (may be NULL) */
  DMTCP_EVENT_POST_EXEC = 7,       /* in the new program, right after its INIT */
  DMTCP_EVENT_THREAD_START = 8,    /* in a new program thread; data->tid */
  DMTCP_EVENT_THREAD_EXIT = 9,     /* in an ending program thread; data->tid */
  DMTCP_EVENT_PRESUSPEND = 10,     /* checkpoint begins; program threads still run */
  DMTCP_EVENT_PRECHECKPOINT = 11,  /* all program threads frozen; image not yet written */
  DMTCP_EVENT_RESUME = 12,         /* image written; threads about to run again */
  DMTCP_EVENT_RESTART = 13,        /* restored from an image; threads about to run again */
  DMTCP_EVENT_THREAD_RESUME = 14,  /* in every program thread as it leaves the frozen state */
} DmtcpEvent_t;

typedef struct DmtcpEventData {
  uint32_t size;        /* sizeof(DmtcpEventData_t) of the runtime: fields beyond it are absent */
  uint32_t generation;  /* PRESUSPEND..RESTART: the checkpoint generation */
  int32_t pid;          /* ATFORK_CHILD: the parent's pid */
  int32_t tid;          /* THREAD_START, THREAD_EXIT, THREAD_RESUME: the thread */
  const char *path;     /* PRE_EXEC: the program about to be executed, or NULL */
} DmtcpEventData_t;

typedef struct DmtcpPluginDescriptor {
  uint32_t api_version; /* DMTCP_PLUGIN_API_VERSION */
  const char *name;
  const char *description;
  void (*event_hook)(DmtcpEvent_t event, const DmtcpEventData_t *data);
} DmtcpPluginDescriptor_t;

/* Every plugin defines this (the runtime finds it in each library of DMTCP_PLUGIN). */
const DmtcpPluginDescriptor_t *dmtcp_plugin_descriptor(void);

/* Declares the descriptor and its accessor in one line:
 *   DMTCP_DECL_PLUGIN("myplugin", "what it does", my_hook); */
#define DMTCP_DECL_PLUGIN(NAME, DESCRIPTION, HOOK)                                  \
  static const DmtcpPluginDescriptor_t dmtcp_plugin_descriptor_value_ = {           \
      DMTCP_PLUGIN_API_VERSION, (NAME), (DESCRIPTION), (HOOK)};                     \
  __attribute__((visibility("default"))) const DmtcpPluginDescriptor_t *          \
  dmtcp_plugin_descriptor(void) {                                                   \
    return &dmtcp_plugin_descriptor_value_;                                         \
  }

/* Status codes of the services (0 = success). */
#define DMTCP_OK 0
#define DMTCP_ERR_NOT_ENABLED (-1)   /* no runtime in this process */
#define DMTCP_ERR_WRONG_CONTEXT (-2) /* not allowed from this thread or event (see below) */
#define DMTCP_ERR_COORDINATOR (-3)   /* the coordinator connection failed */
#define DMTCP_ERR_NOT_FOUND (-4)
#define DMTCP_ERR_INVALID (-5)       /* a NULL or malformed argument */
#define DMTCP_ERR_NOT_A_NUMBER (-6)  /* numeric key-value operation on a non-number */
#define DMTCP_ERR_TOO_LARGE (-7)

#define DMTCP_LOG_ERROR 0
#define DMTCP_LOG_WARNING 1
#define DMTCP_LOG_INFO 2
#define DMTCP_LOG_DEBUG 3

/* The ABI version of the loaded runtime. */
int dmtcp_plugin_api_version(void) __attribute__((weak));

/* Barriers: every process of the computation calls them with the same names in the same
 * order. Only from PRESUSPEND, PRECHECKPOINT, RESUME and RESTART hooks. */
int dmtcp_global_barrier(const char *name) __attribute__((weak));
int dmtcp_local_barrier(const char *name) __attribute__((weak));

/* The coordinator's key-value store, one namespace per `db`. From INIT, PRESUSPEND,
 * PRECHECKPOINT, RESUME and RESTART hooks. Put a global barrier between the processes'
 * sets and their gets. Numbers are stored as decimal text. */
int dmtcp_kvdb_set(const char *db, const void *key, size_t klen, const void *value,
                   size_t vlen) __attribute__((weak));
/* Copies at most `len` bytes into buf; returns the value's full length or an error. */
ssize_t dmtcp_kvdb_get(const char *db, const void *key, size_t klen, void *buf, size_t len)
    __attribute__((weak));
int dmtcp_kvdb_incr(const char *db, const void *key, size_t klen, int64_t delta, int64_t *result)
    __attribute__((weak));
int dmtcp_kvdb_min(const char *db, const void *key, size_t klen, int64_t value, int64_t *result)
    __attribute__((weak));
int dmtcp_kvdb_max(const char *db, const void *key, size_t klen, int64_t value, int64_t *result)
    __attribute__((weak));

/* This plugin's section of the image (`plugin:<name>`): save from PRESUSPEND or PRECHECKPOINT;
 * load after RESUME or RESTART (returns the full length, copies at most len bytes). */
int dmtcp_plugin_save(const char *name, const void *data, size_t len) __attribute__((weak));
ssize_t dmtcp_plugin_load(const char *name, void *buf, size_t len) __attribute__((weak));

/* Virtual id tables (ids >= 0), one per `table` name, saved with the process. register returns
 * the virtual id (the real one when free); update re-points it after a restart. Lookups return
 * DMTCP_ERR_NOT_FOUND for unknown ids. */
int64_t dmtcp_vid_register(const char *table, int64_t real) __attribute__((weak));
int64_t dmtcp_vid_to_real(const char *table, int64_t virt) __attribute__((weak));
int64_t dmtcp_vid_to_virtual(const char *table, int64_t real) __attribute__((weak));
int dmtcp_vid_update(const char *table, int64_t virt, int64_t new_real) __attribute__((weak));
int dmtcp_vid_unregister(const char *table, int64_t virt) __attribute__((weak));

/* Fds the checkpoint must leave alone (the plugin's own connections, logs...). */
int dmtcp_protect_fd(int fd) __attribute__((weak));
int dmtcp_unprotect_fd(int fd) __attribute__((weak));
int dmtcp_is_protected_fd(int fd) __attribute__((weak));

/* One line to the runtime's log (stderr copy), safe from every hook. */
void dmtcp_log(int level, const char *msg) __attribute__((weak));

#ifdef __cplusplus
}
#endif
#endif /* DMTCP_H */
