/* HDF5 token shards (DESIGN 6): /tokens (uint16, or uint32 when vocab_size > 65535), /doc_offsets
 * (uint64, n_docs + 1), optional /loss_mask (uint8), and root attributes describing them. */
#ifndef MT_SHARD_H
#define MT_SHARD_H

#include <hdf5.h>
#include <stdint.h>

#include "model/common.h"

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

/* The file-access and dataset-creation properties every HDF5 file of the project uses (DESIGN 6). */
hid_t h5_fapl(void);
hid_t h5_fcpl(void);
hid_t h5_dcpl(void);
/* Turns off HDF5's own error stack printing, once (errors are reported as one line instead). */
void h5_quiet(void);
/* A file whose close failed stays half-open inside HDF5, which then crashes when the library shuts down
 * (at exit, or in MPI_Finalize): such a process must end with _exit instead. */
void h5_mark_broken(void);
int h5_is_broken(void);
/* Readers of single-value attributes: 0, H5_ATTR_MISSING, or H5_ATTR_KIND (another type, or not one value).
 */
enum { H5_ATTR_MISSING = -1, H5_ATTR_KIND = -2 };
int h5_get_attr_i64(hid_t obj, const char *name, long long *out);
int h5_get_attr_u64(hid_t obj, const char *name, uint64_t *out);
/* A string attribute stored either way (fixed length, or variable length as h5py writes str), newly
 * allocated; NULL with *rc set. */
char *h5_get_attr_str(hid_t obj, const char *name, int *rc);
/* Writes a fixed-length string attribute. */
void h5_put_attr_str(hid_t obj, const char *name, const char *v);

#endif
