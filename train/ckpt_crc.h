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

/* crc32c(A || B) from crc_a = crc32c(A), crc_b = crc32c(B) and len_b = the byte length of B, without the
 * data: lets each rank checksum the pieces of a block it owns and rank 0 join them. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);

#endif
