/* A synthetic corpus for tests and the first demo: documents drawn from a sparse first-order Markov
 * chain (each token has `branch` likely successors), so a model can learn it far below the unigram
 * entropy. */
#ifndef MT_SYNTH_H
#define MT_SYNTH_H

#include "base/common.h"

typedef struct {
    int vocab_size, eot_token, branch;
    long n_tokens;
    long min_doc, max_doc;
    uint64_t seed;
} synth_options;

/* Writes one shard of about n_tokens tokens (whole documents, each ending with EOT) to path. */
int synth_write_shard(const char *path, const synth_options *opt, mt_err *err);

#endif
