/* The training loop of bin/train. */
#ifndef MT_TRAINER_H
#define MT_TRAINER_H

#include "train/run_config.h"

/* Prints the resolved config, `params: N` and the per-rank memory estimate. */
void trainer_dry_run(const run_config *rc);

typedef struct {
    const char *resume;  /* --resume PATH: this checkpoint */
    int no_resume;       /* --no-resume: start fresh even if RUN_DIR/ckpt has checkpoints */
    int eval_only;       /* --eval-only: print "eval_loss: X" of the resumed parameters and exit */
    int allow_untrained; /* --allow-untrained: --eval-only without a checkpoint evaluates random parameters */
} trainer_options;

/* Trains (resuming from RUN_DIR/ckpt/latest by default); returns an exit code (DESIGN 8) with err set when
 * it is not 0: MT_EXIT_STOPPED after a stop signal and its checkpoint. */
int trainer_run(const run_config *rc, const trainer_options *opt, mt_err *err);

#endif
