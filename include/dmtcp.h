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

#ifdef __cplusplus
}
#endif
#endif /* DMTCP_H */
