#include "data/perm.h"

#include "base/common.h"

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void perm_init(perm *p, uint64_t n, uint64_t seed, uint64_t epoch) {
    p->n = n;
    p->key = mix64(mix64(seed) ^ epoch);
    p->half_bits = 1;
    while ((1ULL << (2 * p->half_bits)) < n)
        p->half_bits++;
}

/* Four Feistel rounds over 2 * half_bits bits: a bijection of [0, 4^half_bits). */
static uint64_t feistel(const perm *p, uint64_t x) {
    uint64_t mask = (1ULL << p->half_bits) - 1, l = x >> p->half_bits, r = x & mask;
    for (uint64_t round = 0; round < 4; round++) {
        uint64_t f = mix64(p->key ^ (round << 56) ^ r) & mask;
        uint64_t t = l ^ f;
        l = r;
        r = t;
    }
    return (l << p->half_bits) | r;
}

uint64_t perm_at(const perm *p, uint64_t i) {
    /* Outside [0, n) the cycle walk may never come back into range. */
    CHECK(i < p->n, "permutation position %llu of %llu", (unsigned long long)i, (unsigned long long)p->n);
    uint64_t x = feistel(p, i);
    while (x >= p->n)
        x = feistel(p, x); /* cycle-walking keeps it a bijection of [0, n) */
    return x;
}
