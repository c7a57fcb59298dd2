/* The token shard writer: the format of data/shard.h (the same datasets and root attributes, written
 * with h5_fapl/h5_dcpl), with tokens buffered and written a whole 1 Mi-token chunk at a time (documents
 * of a few tokens would otherwise cost a read-modify-write of a chunk each), and an optional per-document
 * source: /doc_source (uint8, n_docs) indexes the root attribute doc_source_names, the names joined by
 * '\n' in order of first appearance (index 255 = "(other)" beyond 255 names). Written as PATH.tmp and
 * renamed to PATH when complete. */
#ifndef MT_SHARD_WRITER_H
#define MT_SHARD_WRITER_H

#include <stdint.h>

#include "base/common.h"

typedef struct shard_writer shard_writer;

shard_writer *shard_writer_open(const char *path, const char *tokenizer, int vocab_size, int eot_token,
                                const char *source, int with_mask, mt_err *err);
int shard_writer_append(shard_writer *w, const int32_t *tokens, const uint8_t *mask, long n, mt_err *err);
/* Ends a document; source_name (may be NULL: no source) goes to /doc_source. */
void shard_writer_end_doc(shard_writer *w, const char *source_name);
long shard_writer_tokens(const shard_writer *w);
int shard_writer_close(shard_writer *w, mt_err *err);
void shard_writer_abort(shard_writer *w);

#endif
