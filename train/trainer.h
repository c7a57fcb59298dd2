/* The training loop of bin/train. */
#ifndef MT_TRAINER_H
#define MT_TRAINER_H

#include "train/run_config.h"

/* Prints the resolved config, `params: N` and the per-rank memory estimate. */
void trainer_dry_run(const run_config *rc);

/* Trains; returns an exit code (DESIGN 8) with err set when it is not 0. */
int trainer_run(const run_config *rc, mt_err *err);

#endif
