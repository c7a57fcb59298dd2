#include "loader.h"

#include <stdlib.h>
#include <string.h>

int loader_open(loader *l, char *const *paths, int n, int T, int vocab_size, int loss_vocab, mt_err *err) {
    memset(l, 0, sizeof *l);
    l->T = T;
    l->vocab_size = vocab_size;
    l->loss_vocab = loss_vocab;
    l->shards = mt_calloc((size_t)n, sizeof *l->shards);
    l->first_token = mt_calloc((size_t)n, sizeof *l->first_token);
    for (int i = 0; i < n; i++) {
        if (shard_open(&l->shards[i], paths[i], err)) {
            loader_close(l);
            return -1;
        }
        l->n_shards = i + 1;
        if (l->shards[i].vocab_size > vocab_size) {
            mt_fail(err, "%s: shard vocab_size %d exceeds the model's vocab_size %d", paths[i],
                    l->shards[i].vocab_size, vocab_size);
            loader_close(l);
            return -1;
        }
        l->first_token[i] = l->n_tokens;
        l->n_tokens += l->shards[i].n_tokens;
    }
    l->n_windows = l->n_tokens / (T + 1);
    if (l->n_windows == 0) {
        mt_fail(err, "%s: %ld tokens in all, fewer than one window of seq_len + 1 = %d",
                n ? paths[0] : "data", l->n_tokens, T + 1);
        loader_close(l);
        return -1;
    }
    l->buf = mt_malloc((size_t)(T + 1) * sizeof *l->buf);
    return 0;
}

void loader_close(loader *l) {
    for (int i = 0; i < l->n_shards; i++)
        shard_close(&l->shards[i]);
    free(l->shards);
    free(l->first_token);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

int loader_window(loader *l, long w, int32_t *tokens, mt_err *err) {
    long start = w * (l->T + 1), need = l->T + 1, got = 0;
    int s = 0;
    while (s + 1 < l->n_shards && l->first_token[s + 1] <= start)
        s++;
    while (got < need) {
        shard *sh = &l->shards[s];
        long off = start + got - l->first_token[s];
        long n = sh->n_tokens - off < need - got ? sh->n_tokens - off : need - got;
        if (shard_read(sh, off, n, tokens + got, NULL, err))
            return -1;
        for (long i = 0; i < n; i++) {
            int32_t t = tokens[got + i];
            if (t < 0 || t >= l->vocab_size)
                return mt_fail(err, "%s: token id %d at offset %ld is not below vocab_size %d", sh->path, t,
                               off + i, l->vocab_size);
            if (t >= l->loss_vocab && got + i > 0)
                return mt_fail(err, "%s: target token id %d at offset %ld is not below loss_vocab %d",
                               sh->path, t, off + i, l->loss_vocab);
        }
        got += n;
        s++;
    }
    return 0;
}

int loader_next(loader *l, int B, int32_t *tokens, float *weights, mt_err *err) {
    for (int b = 0; b < B; b++) {
        if (loader_window(l, l->cursor, tokens + (size_t)b * (l->T + 1), err))
            return -1;
        for (int t = 0; t < l->T; t++)
            weights[(size_t)b * l->T + t] = 1.0f;
        if (++l->cursor == l->n_windows) {
            l->cursor = 0;
            l->epoch++;
        }
    }
    return 0;
}
