/* What bin/train checks before it allocates the model or trains step 1 (DESIGN 8): a run that cannot
 * work is refused in one line at start-up instead of crashing, hanging or failing hours later. */
#ifndef MT_PREFLIGHT_H
#define MT_PREFLIGHT_H

#include "data/loader.h"
#include "parallel/comm.h"
#include "train/run_config.h"

/* Host memory this rank will allocate for the model and the optimizer on backend o (built against a
 * counting backend exactly as the real ones are), against what the machine has free for the ranks on this
 * node (MemAvailable, and the cgroup's limit where there is one). Collective. */
int preflight_memory(const run_config *rc, ops *o, comm_ctx *c, mt_err *err);

/* Every shard of train and val (may be NULL) read once (loader_check_shard), the shards dealt out over the
 * ranks. Collective; every rank returns the same result and message. */
int preflight_data(loader *train, loader *val, int eot_token, comm_ctx *c, mt_err *err);

/* RUN_DIR/ckpt/latest, if present, must be a symbolic link (the checkpoint code replaces it by rename). */
int preflight_ckpt_dir(const char *ckpt_dir, mt_err *err);

#endif
