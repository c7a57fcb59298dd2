/* A pseudo-random permutation of [0, n) that needs no memory: a keyed Feistel network over the next
 * power of four, cycle-walked back into range. Each epoch of the loader is perm(seed, epoch). */
#ifndef MT_PERM_H
#define MT_PERM_H

#include <stdint.h>

typedef struct {
    uint64_t n, key;
    int half_bits;
} perm;

void perm_init(perm *p, uint64_t n, uint64_t seed, uint64_t epoch);
/* The element at position i (0 <= i < n); a bijection of [0, n). */
uint64_t perm_at(const perm *p, uint64_t i);

#endif
