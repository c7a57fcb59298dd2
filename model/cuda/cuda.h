/* The CUDA backend (model/cuda): bf16 working precision (OPS_ACT), fp32 master weights, Adam state and
 * reductions; cuBLASLt for the matmuls; deterministic kernels (no atomics, fixed reduction orders). */
#ifndef MT_CUDA_H
#define MT_CUDA_H

#include "base/common.h"
#include "model/ops.h"

/* NULL with a one-line message in err when there is no usable GPU (none at all, or device >= count);
 * else a backend on `device` with its own stream and cuBLASLt handle. */
ops *ops_cuda_create(int device, mt_err *err);

#endif
