/* Checked CUDA runtime and cuBLASLt calls: a failure is a programmer error (file:line, the call and the
 * library's error string, then abort through CHECK). */
#ifndef MT_CUDA_CHECK_H
#define MT_CUDA_CHECK_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "base/common.h"

#define CUDA_CHECK(call)                                                                                     \
    do {                                                                                                     \
        cudaError_t cuda_err_ = (call);                                                                      \
        CHECK(cuda_err_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(cuda_err_));                     \
    } while (0)

#define CUBLAS_CHECK(call)                                                                                   \
    do {                                                                                                     \
        cublasStatus_t cublas_st_ = (call);                                                                  \
        CHECK(cublas_st_ == CUBLAS_STATUS_SUCCESS, "%s: %s (%d)", #call,                                     \
              cublasLtGetStatusString(cublas_st_), (int)cublas_st_);                                         \
    } while (0)

#endif
