/* Internals shared by the CUDA backend's host files.
 *
 * Kernel rules (the .cu files; they also build with g++ against the SIMT emulator, tests/simt): include
 * kern.h first; launch with LAUNCH; only threadIdx/blockIdx/blockDim/gridDim, __syncthreads, *_sync warp
 * intrinsics with the full mask, statically sized __shared__ arrays without initializers (dynamic shared
 * memory through DYNAMIC_SHARED), cuda_bf16.h conversions and the float math functions; no atomics; block
 * sizes multiples of 32; reductions in a fixed order (kern.h's block_sum/block_max, or one thread walking
 * rows in order). */
#ifndef MT_CUDA_INTERNAL_H
#define MT_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "model/ops.h"

struct ops_buf {
    void *d;         /* device memory */
    size_t n;        /* elements */
    ops_dtype dtype; /* storage: OPS_F32, OPS_I32 or OPS_BF16 */
};

typedef struct {
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *ws; /* cuBLASLt workspace */
    size_t ws_bytes;
    void *scratch; /* per-op device scratch (partial sums, fp32 scores); grows, only used in stream order */
    size_t scratch_bytes;
} cuda_ctx;

static inline cuda_ctx *cuda_of(ops *o) { return (cuda_ctx *)o->ctx; }

size_t cuda_elem_size(ops_dtype t);
/* The device address of p, after checking that p's buffer has storage dtype `want` (OPS_ACT: the working
 * precision) and holds [p.off, p.off + n). `what` names the argument in the failure message. */
void *cuda_arg(ops_ptr p, size_t n, ops_dtype want, const char *what);
/* Elements spanned by a rows x cols block with row stride ld. */
size_t cuda_extent(int rows, int cols, int ld);
/* At least `bytes` of device scratch (contents undefined). */
void *cuda_scratch(cuda_ctx *c, size_t bytes);

/* Row-major C = alpha op(A) op(B) + beta C for `batch` matrices at element strides sA, sB, sC; A and B bf16,
 * C bf16 (c_f32 = 0) or fp32 (c_f32 = 1); fp32 compute. */
void cuda_gemm(cuda_ctx *c, int trans_a, int trans_b, int m, int n, int k, float alpha, const void *A,
               int lda, long long sA, const void *B, int ldb, long long sB, float beta, void *C, int c_f32,
               int ldc, long long sC, int batch);

void cuda_install_mem(ops *o);
void cuda_install_compute(ops *o);

#endif
