/* The collectives a compute backend's buffers need (DESIGN 4, 5). */
#ifndef MT_COMM_BACKEND_H
#define MT_COMM_BACKEND_H

#include "base/common.h"
#include "model/ops.h"
#include "parallel/comm.h"

/* Gives c the device collectives (NCCL) that the buffers of backend o need; nothing for host memory. */
int comm_attach_backend(comm_ctx *c, ops *o, mt_err *err);

#endif
