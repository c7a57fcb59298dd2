/* CRC32C (Castagnoli) of checkpoint data (DESIGN 7): one checksum per fixed 4 MiB block of a dataset's
 * row-major little-endian float32 bytes, so any layout can verify the blocks it reads. */
#ifndef MT_CKPT_CRC_H
#define MT_CKPT_CRC_H

#include <stddef.h>
#include <stdint.h>

enum { CKPT_CRC_BLOCK_FLOATS = 1 << 20 }; /* 4 MiB of float32 */

/* The standard CRC32C of n bytes (initial value and final xor ~0): crc32c("123456789") = 0xe3069283. */
uint32_t crc32c(const void *data, size_t n);

/* The same through the table-driven path only (what runs on CPUs without SSE4.2); for tests. */
uint32_t crc32c_portable(const void *data, size_t n);

/* Number of blocks of a dataset of n floats (the last block may be shorter; 0 floats gives 0 blocks). */
size_t ckpt_crc_blocks(size_t n);

/* out[b] = crc32c of block b of x (n floats, host byte order = little-endian). */
void ckpt_crc_floats(const float *x, size_t n, uint32_t *out);

#endif
