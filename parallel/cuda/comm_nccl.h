/* Device collectives through NCCL (DESIGN 5): one communicator per group, built from a unique id that the
 * group's rank 0 broadcasts over MPI. */
#ifndef MT_COMM_NCCL_H
#define MT_COMM_NCCL_H

#include "parallel/comm.h"

/* NULL with err set when NCCL cannot be initialized. Collectives abort the job (instead of hanging) on an
 * asynchronous NCCL error or when one takes longer than MT_NCCL_TIMEOUT seconds (default 600). */
const comm_device *comm_nccl_create(comm_ctx *c, mt_err *err);

#endif
