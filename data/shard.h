/* HDF5 token shards (DESIGN 6): /tokens (uint16, or uint32 when vocab_size > 65535), /doc_offsets
 * (uint64, n_docs + 1), optional /loss_mask (uint8), and root attributes describing them. */
#ifndef MT_SHARD_H
#define MT_SHARD_H

#include <hdf5.h>
#include <stdint.h>

#include "base/common.h"
#include "base/h5.h"

#define SHARD_FORMAT "meshtrain.tokens"
enum { SHARD_FORMAT_VERSION = 1 };

typedef struct {
    char path[4096];
    hid_t file, tokens, mask; /* mask < 0 when absent */
    long n_tokens, n_docs;
    int vocab_size, eot_token;
} shard;

/* Opens and validates a shard (format, version, dtypes, sizes); one-line error naming the file. */
int shard_open(shard *s, const char *path, mt_err *err);
void shard_close(shard *s);
/* Reads tokens [start, start + n) as int32; mask (may be NULL) gets /loss_mask or 1s. */
int shard_read(shard *s, long start, long n, int32_t *out, uint8_t *mask, mt_err *err);

/* Reads /doc_offsets (n_docs + 1 entries) into a new array. */
int shard_doc_offsets(shard *s, uint64_t **out, mt_err *err);

#endif
