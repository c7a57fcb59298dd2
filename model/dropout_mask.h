/* The dropout mask of LoRA's input (model/lora.h), one definition for the CPU and CUDA backends (and
 * written out again in the PyTorch reference, tests/ref): a counter-based draw, so a mask needs no state,
 * any element can be drawn by any thread or rank, and a pass can be replayed (recompute, the backward).
 * Element `index` of the pass with key `key` is kept iff the top 24 bits of mix64(key ^ mix64(index)) are
 * at least threshold = round(p * 2^24), mix64 being splitmix64's finalizer with its increment. */
#ifndef MT_DROPOUT_MASK_H
#define MT_DROPOUT_MASK_H

#include <stdint.h>

#if defined(__CUDACC__) || defined(MT_SIMT)
#define MT_HOST_DEVICE __host__ __device__
#else
#define MT_HOST_DEVICE
#endif

static MT_HOST_DEVICE inline uint64_t mt_dropout_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static MT_HOST_DEVICE inline int mt_dropout_keep(uint64_t key, uint64_t index, uint32_t threshold) {
    return (uint32_t)(mt_dropout_mix64(key ^ mt_dropout_mix64(index)) >> 40) >= threshold;
}

#endif
