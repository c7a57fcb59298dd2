/* SIMT emulator: runs the CUDA backend's kernels (the .cu files of model/cuda, compiled by g++
 * with -DMT_SIMT) and its host code (CUDA runtime, cuBLASLt and NCCL calls) on a machine without a GPU.
 *
 * What it verifies:
 *   - kernel results, with every CUDA thread a fiber and the blocks of a grid run one after another;
 *   - __syncthreads placement: threads run from one sync point to the next in ascending (schedule 0) or
 *     descending (schedule 1) order, so a missing barrier gives results that differ between schedules;
 *     threads waiting at different __syncthreads call sites, and deadlocks, abort naming the kernel;
 *   - warp shuffles and votes: all 32 lanes must take part with mask 0xffffffff and the same width;
 *   - launch configurations (dimension limits, 1024 threads, dynamic shared memory size);
 *   - device memory discipline: guard zones around every cudaMalloc (checked after every launch, at
 *     cudaFree and by simt_check_guards) and around dynamic shared memory; fresh allocations and each
 *     block's dynamic shared memory filled with NaN bytes (static __shared__ arrays keep whatever the
 *     previous block left); memcpy directions; cuBLASLt and NCCL arguments (device pointers, extents,
 *     overlaps, types);
 *   - with -fsanitize=address, every out-of-bounds or use-after-free access inside kernels.
 *
 * What it cannot verify:
 *   - speed, occupancy, register or static shared memory limits;
 *   - races between blocks (blocks never overlap here) and memory-model effects (fences, visibility,
 *     atomics ordering): every write is visible at once to every later reader;
 *   - tensor-core or inline-PTX code, and warp-divergent code that relies on independent thread
 *     scheduling within a warp;
 *   - approximate intrinsics (__expf, __logf, __fdividef, rsqrtf, ...): they are computed exactly here,
 *     so code that is only accurate enough with exact math will pass here and may fail on a GPU;
 *   - the per-kernel opt-in for more than 48 KiB of dynamic shared memory (cudaFuncSetAttribute raises the
 *     limit for all kernels at once).
 *
 * Kernel code sees: __global__/__device__/__host__/__forceinline__/__shared__/__launch_bounds__,
 * threadIdx, blockIdx, blockDim, gridDim, warpSize, __syncthreads, __syncwarp, __shfl*_sync, __ballot_sync,
 * __any_sync, __all_sync, SIMT_DYNAMIC_SHARED, and the device math below. __device__ expands to nothing
 * (g++ rejects a doubled `inline`), so a device function defined in a header must be `inline` or `static`,
 * as `__device__ __forceinline__` is. __shared__ expands to `static`: blocks run one after another in one
 * OS thread, so a function-static is exactly one block's shared memory.
 *
 * This header also compiles as C, for host code that calls the extern "C" functions below. */
#ifndef MT_SIMT_H
#define MT_SIMT_H

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif
/* 1 if p lies in (or in the guard zones of) a live cudaMalloc allocation. */
int simt_is_device_ptr(const void *p);
/* Aborts, naming the allocation, if any guard zone of a live allocation was overwritten. */
void simt_check_guards(void);
/* 0: threads run in ascending order between sync points, 1: descending. Initially $SIMT_SCHEDULE or 0. */
void simt_set_schedule(int schedule);
#ifdef __cplusplus
}
#endif

#ifdef __cplusplus

/* The whole runtime header, before the macros below: its declarations use names such as gridDim. */
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __restrict__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict
#define __launch_bounds__(...)

/* Runs body once per CUDA thread of every block of the grid, blocks in grid order (x fastest). */
void simt_launch(const char *name, dim3 grid, dim3 block, size_t dyn_shared, void *stream,
                 const std::function<void()> &body);

/* State of the running fiber and block, read by the index macros; valid only inside a kernel. */
struct simt_fiber_view {
    uint3 thread_idx;
};
extern simt_fiber_view *simt_current;
extern uint3 simt_block_idx;
extern dim3 simt_block_dim, simt_grid_dim;

#define threadIdx (static_cast<const uint3 &>(simt_current->thread_idx))
#define blockIdx (static_cast<const uint3 &>(simt_block_idx))
#define blockDim (static_cast<const dim3 &>(simt_block_dim))
#define gridDim (static_cast<const dim3 &>(simt_grid_dim))
constexpr int warpSize = 32;

void *simt_dynamic_shared();
#define SIMT_DYNAMIC_SHARED(type, name) type *name = static_cast<type *>(simt_dynamic_shared())

/* The source position identifies the barrier: threads must all wait at the same one. */
void simt_syncthreads(const char *file, int line);
#define __syncthreads() simt_syncthreads(__FILE__, __LINE__)

/* Warp operations: every lane of the warp stops at the call until all 32 have arrived. */
enum simt_warp_op { SIMT_SYNCWARP, SIMT_SHFL_IDX, SIMT_SHFL_UP, SIMT_SHFL_DOWN, SIMT_SHFL_XOR, SIMT_BALLOT };
/* Exchanges `size` bytes at `in` (lane argument `arg`) and returns the result bytes through `out`. */
void simt_warp(simt_warp_op op, unsigned mask, const void *in, void *out, size_t size, int arg, int width);

inline void __syncwarp(unsigned mask = 0xffffffffu) {
    simt_warp(SIMT_SYNCWARP, mask, nullptr, nullptr, 0, 0, 32);
}

template <typename T> inline T simt_shuffle(simt_warp_op op, unsigned mask, T var, int arg, int width) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffles move at most 8 bytes");
    T out;
    simt_warp(op, mask, &var, &out, sizeof(T), arg, width);
    return out;
}
template <typename T> inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
    return simt_shuffle(SIMT_SHFL_IDX, mask, var, src_lane, width);
}
template <typename T> inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return simt_shuffle(SIMT_SHFL_UP, mask, var, (int)delta, width);
}
template <typename T> inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return simt_shuffle(SIMT_SHFL_DOWN, mask, var, (int)delta, width);
}
template <typename T> inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
    return simt_shuffle(SIMT_SHFL_XOR, mask, var, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
    int p = predicate != 0;
    unsigned out;
    simt_warp(SIMT_BALLOT, mask, &p, &out, sizeof p, 0, 32);
    return out;
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == 0xffffffffu; }

/* Device math g++ lacks. The approximate intrinsics are computed exactly (see the top of this file). */
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fmaf_rn(float x, float y, float z) { return std::fma(x, y, z); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline double __dadd_rn(double x, double y) { return x + y; }
inline double __dmul_rn(double x, double y) { return x * y; }
inline double __fma_rn(double x, double y, double z) { return std::fma(x, y, z); }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : x > 0.0f ? x : 0.0f; } /* NaN -> 0 */
inline int __float_as_int(float x) {
    int i;
    std::memcpy(&i, &x, 4);
    return i;
}
inline unsigned __float_as_uint(float x) {
    unsigned i;
    std::memcpy(&i, &x, 4);
    return i;
}
inline float __int_as_float(int i) {
    float x;
    std::memcpy(&x, &i, 4);
    return x;
}
inline float __uint_as_float(unsigned i) {
    float x;
    std::memcpy(&x, &i, 4);
    return x;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <typename T> inline T __ldg(const T *p) { return *p; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

#endif /* __cplusplus */
#endif /* MT_SIMT_H */
