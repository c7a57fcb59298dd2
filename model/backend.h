/* Choosing the compute backend of a run (DESIGN 4): "cpu", "cuda" (one GPU per rank, chosen by the
 * rank's local rank on its node) or "auto" (cuda when this build has it and a usable GPU is there, else
 * cpu with a warning). */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include "base/common.h"
#include "model/ops.h"

/* Whether this build has the CUDA backend (make CUDA=1, or the emulated test build). */
int backend_has_cuda(void);

/* NULL with err set when "cuda" was asked for and cannot run here. */
ops *backend_create(const char *kind, int threads, mt_err *err);

#endif
