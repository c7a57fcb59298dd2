/* Included first by every .cu file of the CUDA backend. Kernels are written against a portable subset of
 * CUDA (see the rules in cuda_internal.h) so that they build both with nvcc for the GPU
 * and with g++ against the SIMT emulator (tests/simt/simt.h, -DMT_SIMT), unchanged.
 *
 *   LAUNCH(kernel, grid, block, shmem, stream, args...)   launch on a stream (void *, the backend's stream)
 *   DYNAMIC_SHARED(type, name)                            the block's dynamic shared memory as type name[] */
#ifndef MT_CUDA_KERN_H
#define MT_CUDA_KERN_H

#ifdef MT_SIMT
#include <simt.h> /* the emulator, found through the build's include path (-Itests/simt) */
#define LAUNCH(kernel, grid, block, shmem, stream, ...)                                                      \
    simt_launch(#kernel, grid, block, shmem, stream, [=] { kernel(__VA_ARGS__); })
#define DYNAMIC_SHARED(type, name) SIMT_DYNAMIC_SHARED(type, name)
#else
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#define LAUNCH(kernel, grid, block, shmem, stream, ...)                                                      \
    do {                                                                                                     \
        kernel<<<grid, block, shmem, (cudaStream_t)(stream)>>>(__VA_ARGS__);                                 \
        cudaError_t launch_err_ = cudaGetLastError();                                                        \
        if (launch_err_ != cudaSuccess) {                                                                    \
            fprintf(stderr, "%s:%d: launching %s: %s\n", __FILE__, __LINE__, #kernel,                        \
                    cudaGetErrorString(launch_err_));                                                        \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)
#define DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

#include <cuda_bf16.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "model/cuda/cuda_kern_api.h"

typedef __nv_bfloat16 bf16;

/* Loads and stores of the working precision, converted to and from fp32 in registers. */
static __device__ __forceinline__ float ld_bf(const bf16 *p) { return __bfloat162float(*p); }
static __device__ __forceinline__ void st_bf(bf16 *p, float v) { *p = __float2bfloat16(v); }

/* Reductions across a warp and across a block, in a fixed tree (xor butterfly, then warp 0 over the
 * per-warp results in warp order): the result is the same bits whatever the scheduling. Every thread of
 * the block must call them (blockDim.x a multiple of 32, at most 1024); all threads get the result.
 * `red` is a __shared__ array of at least 33 elements owned by the caller. */
static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
static __device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

#define MT_BLOCK_REDUCE(NAME, T, WARP_OP, IDENT)                                                             \
    static __device__ __forceinline__ T NAME(T v, T *red) {                                                  \
        int tid = (int)threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarp = (int)blockDim.x >> 5;          \
        v = WARP_OP(v);                                                                                      \
        if (lane == 0)                                                                                       \
            red[warp] = v;                                                                                   \
        __syncthreads();                                                                                     \
        if (warp == 0) {                                                                                     \
            T w = lane < nwarp ? red[lane] : (T)(IDENT);                                                     \
            w = WARP_OP(w);                                                                                  \
            if (lane == 0)                                                                                   \
                red[32] = w;                                                                                 \
        }                                                                                                    \
        __syncthreads();                                                                                     \
        T r = red[32];                                                                                       \
        __syncthreads();                                                                                     \
        return r;                                                                                            \
    }
MT_BLOCK_REDUCE(block_sum, float, warp_sum, 0.0f)
MT_BLOCK_REDUCE(block_max, float, warp_max, -INFINITY)
MT_BLOCK_REDUCE(block_sum_d, double, warp_sum_d, 0.0)

static inline unsigned mt_blocks(size_t n, int per_block) {
    return (unsigned)((n + (size_t)per_block - 1) / (size_t)per_block);
}

#endif
