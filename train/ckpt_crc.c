#include "train/ckpt_crc.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/* The file stores float32 little-endian and checksums are taken over the memory bytes of floats. */
_Static_assert(sizeof(float) == 4, "float32");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint checksums assume a little-endian host"
#endif

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82f63b78u

/* Slicing-by-8 tables for the portable path, built once. */
static uint32_t crc_table[8][256];
static int crc_table_ready;

static void crc_table_build(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_table_ready = 1;
}

static uint32_t crc_update_table(uint32_t c, const unsigned char *p, size_t n) {
    if (!crc_table_ready)
        crc_table_build();
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^ crc_table[5][(w >> 16) & 0xff] ^
            crc_table[4][(w >> 24) & 0xff] ^ crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
    }
    for (; n; n--, p++)
        c = (c >> 8) ^ crc_table[0][(c ^ *p) & 0xff];
    return c;
}

#if defined(__x86_64__)
/* The SSE4.2 crc32 instruction computes exactly CRC32C; used when the CPU has it. */
__attribute__((target("sse4.2"))) static uint32_t crc_update_sse42(uint32_t c, const unsigned char *p,
                                                                   size_t n) {
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
    }
    c = (uint32_t)c64;
    for (; n; n--, p++)
        c = _mm_crc32_u8(c, *p);
    return c;
}

static int have_sse42(void) {
    static int known = -1;
    if (known < 0)
        known = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    return known;
}
#endif

uint32_t crc32c(const void *data, size_t n) {
    const unsigned char *p = data;
#if defined(__x86_64__)
    if (have_sse42())
        return ~crc_update_sse42(~0u, p, n);
#endif
    return ~crc_update_table(~0u, p, n);
}

uint32_t crc32c_portable(const void *data, size_t n) { return ~crc_update_table(~0u, data, n); }

size_t ckpt_crc_blocks(size_t n) { return (n + CKPT_CRC_BLOCK_FLOATS - 1) / CKPT_CRC_BLOCK_FLOATS; }

/* Appending a zero byte to a message maps its (unconditioned) CRC register linearly over GF(2), so the
 * CRC after len_b zero bytes is a 32x32 bit matrix times the register; with the ~0 pre- and
 * post-conditioning, crc(A || B) = Z^len_b crc(A) ^ crc(B) where Z shifts one zero byte through. The
 * matrices for 2^k zero bytes are built once by squaring (the zlib crc32_combine method), so a combine
 * costs one matrix-vector product per set bit of len_b. */
static uint32_t zeros_op[64][32]; /* zeros_op[k][i]: the image of bit i after 2^k zero bytes */
static int zeros_op_ready;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

static void zeros_op_build(void) {
    uint32_t bit_op[2][32]; /* one zero bit, then two */
    bit_op[0][0] = CRC32C_POLY;
    for (int i = 1; i < 32; i++)
        bit_op[0][i] = 1u << (i - 1);
    for (int i = 0; i < 32; i++)
        bit_op[1][i] = gf2_times(bit_op[0], bit_op[0][i]);
    uint32_t four[32];
    for (int i = 0; i < 32; i++)
        four[i] = gf2_times(bit_op[1], bit_op[1][i]);
    for (int i = 0; i < 32; i++) /* 8 zero bits = one zero byte */
        zeros_op[0][i] = gf2_times(four, four[i]);
    for (int k = 1; k < 64; k++)
        for (int i = 0; i < 32; i++)
            zeros_op[k][i] = gf2_times(zeros_op[k - 1], zeros_op[k - 1][i]);
    zeros_op_ready = 1;
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b) {
    if (!zeros_op_ready)
        zeros_op_build();
    for (int k = 0; len_b; k++, len_b >>= 1)
        if (len_b & 1)
            crc_a = gf2_times(zeros_op[k], crc_a);
    return crc_a ^ crc_b;
}
