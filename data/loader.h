/* The pretraining stream (DESIGN 6): the dataset is the list of non-overlapping windows of T+1 tokens
 * over all shards in sorted name order (windows may cross shard boundaries). This loader walks them in
 * order; its state (epoch, cursor) is small so checkpoints can save it. */
#ifndef MT_LOADER_H
#define MT_LOADER_H

#include "shard.h"

typedef struct {
    int n_shards;
    shard *shards;
    long *first_token; /* global index of each shard's first token */
    long n_tokens, n_windows;
    int T;
    int vocab_size, loss_vocab;
    long epoch, cursor; /* the state: next window is `cursor` of epoch `epoch` */
    int32_t *buf;
} loader;

/* Opens the shards (paths already expanded and sorted); T is the sequence length. */
int loader_open(loader *l, char *const *paths, int n, int T, int vocab_size, int loss_vocab, mt_err *err);
void loader_close(loader *l);

/* Fills tokens [B, T+1] and weights [B, T] (1 for every prediction) with the next B windows. */
int loader_next(loader *l, int B, int32_t *tokens, float *weights, mt_err *err);

/* Reads window w (0 <= w < n_windows) into tokens [T+1]. */
int loader_window(loader *l, long w, int32_t *tokens, mt_err *err);

#endif
