/* Training data (DESIGN 6). A dataset is a sorted list of token shards, seen as a list of sequences:
 *  - stream (pretraining): the non-overlapping windows of T+1 tokens over the concatenation of all
 *    shards (windows may cross shard boundaries), every weight 1;
 *  - examples (fine-tuning): one document per sequence, truncated or padded to T+1 tokens, the weight of
 *    the prediction at position i being loss_mask[i+1] (0 on padding); examples with no counted token
 *    are dropped and counted;
 *  - examples_all: the same sequences with every prediction of a real token counted (1 up to the
 *    document's end, 0 on padding): training on the whole sequence instead of the response only.
 * Epoch e visits the sequences in the permutation perm(seed, e). A global batch takes the next G
 * sequences; data-parallel rank r of D takes its contiguous slice of G/D. The state (epoch, cursor) is
 * all a checkpoint needs to continue the exact sequence of batches. */
#ifndef MT_LOADER_H
#define MT_LOADER_H

#include "data/shard.h"

typedef enum { LOADER_STREAM, LOADER_EXAMPLES, LOADER_EXAMPLES_ALL } loader_kind;

typedef struct {
    int shard;
    long start, len; /* the document's tokens in its shard */
} loader_example;

typedef struct {
    loader_kind kind;
    int n_shards;
    shard *shards;
    long *first_token; /* global index of each shard's first token */
    long n_tokens;
    long n_seq;               /* sequences per epoch */
    loader_example *examples; /* examples: every kept document */
    long dropped;             /* examples: documents with no counted token after truncation */
    int T;
    int vocab_size, loss_vocab;
    uint64_t seed;
    long epoch, cursor; /* the state: the next sequence is position `cursor` of epoch `epoch` */
    uint8_t *mask_buf;
} loader;

typedef struct {
    long epoch, cursor;
} loader_state;

static inline loader_state loader_get_state(const loader *l) { return (loader_state){l->epoch, l->cursor}; }
static inline void loader_set_state(loader *l, loader_state s) {
    l->epoch = s.epoch;
    l->cursor = s.cursor;
}

int loader_open(loader *l, loader_kind kind, char *const *paths, int n, int T, uint64_t seed, int vocab_size,
                int loss_vocab, mt_err *err);
void loader_close(loader *l);

/* Checks shard s (0 <= s < n_shards) in one pass: /doc_offsets from 0 to n_tokens in order, its eot_token
 * equal to the model's, every token id below vocab_size and every id the loader uses as a target below
 * loss_vocab. A one-line error naming the file and offset otherwise. */
int loader_check_shard(loader *l, int s, int eot_token, mt_err *err);

/* Sequence s of the dataset's own order (0 <= s < n_seq): tokens [T+1], weights [T]. */
int loader_sequence(loader *l, long s, int32_t *tokens, float *weights, mt_err *err);

/* This rank's slice of the next global batch of G sequences (G divisible by dp_size): G/dp_size
 * sequences into tokens [G/D, T+1] and weights [G/D, T]; advances the state by G. */
int loader_global_batch(loader *l, int G, int dp_rank, int dp_size, int32_t *tokens, float *weights,
                        mt_err *err);

/* Sequences [first, first + n) in dataset order (evaluation uses a fixed list); those at n_seq and beyond
 * are padding, token 0 with weight 0, so a last partial batch counts each sequence once. */
int loader_fixed(loader *l, long first, int n, int32_t *tokens, float *weights, mt_err *err);

#endif
