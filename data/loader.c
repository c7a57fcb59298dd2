#include "data/loader.h"

#include <stdlib.h>
#include <string.h>

#include "data/perm.h"

static int check_tokens(loader *l, const shard *sh, long off, const int32_t *t, long n, int first_is_input,
                        mt_err *err) {
    for (long i = 0; i < n; i++) {
        if (t[i] < 0 || t[i] >= l->vocab_size)
            return mt_fail(err, "%s: token id %d at offset %ld is not below vocab_size %d", sh->path, t[i],
                           off + i, l->vocab_size);
        if (t[i] >= l->loss_vocab && !(i == 0 && first_is_input))
            return mt_fail(err, "%s: target token id %d at offset %ld is not below loss_vocab %d", sh->path,
                           t[i], off + i, l->loss_vocab);
    }
    return 0;
}

/* Keeps the documents that have at least one counted prediction within T+1 tokens. */
static int index_examples(loader *l, mt_err *err) {
    long cap = 1024;
    l->examples = mt_malloc((size_t)cap * sizeof *l->examples);
    for (int s = 0; s < l->n_shards; s++) {
        shard *sh = &l->shards[s];
        uint64_t *docs;
        if (shard_doc_offsets(sh, &docs, err))
            return -1;
        uint8_t *mask = mt_malloc((size_t)sh->n_tokens);
        int32_t *tok = mt_malloc((size_t)sh->n_tokens * sizeof *tok);
        int rc = shard_read(sh, 0, sh->n_tokens, tok, mask, err);
        for (long d = 0; !rc && d < sh->n_docs; d++) {
            long a = (long)docs[d], len = (long)docs[d + 1] - a, n = len < l->T + 1 ? len : l->T + 1;
            int counted = 0;
            for (long i = 1; i < n; i++)
                counted |= mask[a + i] != 0 || l->kind == LOADER_EXAMPLES_ALL;
            if (!counted) {
                l->dropped++;
                continue;
            }
            if (l->n_seq == cap) {
                cap *= 2;
                l->examples = realloc(l->examples, (size_t)cap * sizeof *l->examples);
                CHECK(l->examples, "out of memory");
            }
            l->examples[l->n_seq++] = (loader_example){.shard = s, .start = a, .len = len};
        }
        free(mask);
        free(tok);
        free(docs);
        if (rc)
            return -1;
    }
    return 0;
}

int loader_open(loader *l, loader_kind kind, char *const *paths, int n, int T, uint64_t seed, int vocab_size,
                int loss_vocab, mt_err *err) {
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->T = T;
    l->seed = seed;
    l->vocab_size = vocab_size;
    l->loss_vocab = loss_vocab;
    l->shards = mt_calloc((size_t)n, sizeof *l->shards);
    l->first_token = mt_calloc((size_t)n, sizeof *l->first_token);
    l->mask_buf = mt_malloc((size_t)T + 1);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        rc = shard_open(&l->shards[i], paths[i], err);
        if (rc)
            break;
        l->n_shards = i + 1;
        if (l->shards[i].vocab_size > vocab_size)
            rc = mt_fail(err, "%s: shard vocab_size %d exceeds the model's vocab_size %d", paths[i],
                         l->shards[i].vocab_size, vocab_size);
        l->first_token[i] = l->n_tokens;
        l->n_tokens += l->shards[i].n_tokens;
    }
    if (!rc && kind == LOADER_STREAM)
        l->n_seq = l->n_tokens / (T + 1);
    if (!rc && kind != LOADER_STREAM)
        rc = index_examples(l, err);
    if (!rc && l->n_seq == 0)
        rc = mt_fail(err, "%s: no sequences: %ld tokens%s, seq_len + 1 = %d", n ? paths[0] : "data",
                     l->n_tokens, kind != LOADER_STREAM ? " and no example with a counted token" : "", T + 1);
    if (rc)
        loader_close(l);
    return rc;
}

void loader_close(loader *l) {
    for (int i = 0; i < l->n_shards; i++)
        shard_close(&l->shards[i]);
    free(l->shards);
    free(l->first_token);
    free(l->examples);
    free(l->mask_buf);
    memset(l, 0, sizeof *l);
}

static int stream_window(loader *l, long w, int32_t *tokens, float *weights, mt_err *err) {
    long start = w * (l->T + 1), need = l->T + 1, got = 0;
    int s = 0;
    while (s + 1 < l->n_shards && l->first_token[s + 1] <= start)
        s++;
    while (got < need) {
        shard *sh = &l->shards[s];
        long off = start + got - l->first_token[s];
        long n = sh->n_tokens - off < need - got ? sh->n_tokens - off : need - got;
        if (shard_read(sh, off, n, tokens + got, NULL, err) ||
            check_tokens(l, sh, off, tokens + got, n, got == 0, err))
            return -1;
        got += n;
        s++;
    }
    for (int t = 0; t < l->T; t++)
        weights[t] = 1.0f;
    return 0;
}

static int example(loader *l, long e, int32_t *tokens, float *weights, mt_err *err) {
    const loader_example *ex = &l->examples[e];
    shard *sh = &l->shards[ex->shard];
    long n = ex->len < l->T + 1 ? ex->len : l->T + 1;
    if (shard_read(sh, ex->start, n, tokens, l->mask_buf, err) ||
        check_tokens(l, sh, ex->start, tokens, n, 1, err))
        return -1;
    for (long i = n; i <= l->T; i++) { /* padding: EOT tokens that never count */
        tokens[i] = sh->eot_token;
        l->mask_buf[i] = 0;
    }
    int all = l->kind == LOADER_EXAMPLES_ALL;
    for (int t = 0; t < l->T; t++)
        weights[t] = (all ? t + 1 < n : l->mask_buf[t + 1] != 0) ? 1.0f : 0.0f;
    return 0;
}

int loader_sequence(loader *l, long s, int32_t *tokens, float *weights, mt_err *err) {
    return l->kind == LOADER_STREAM ? stream_window(l, s, tokens, weights, err)
                                    : example(l, s, tokens, weights, err);
}

int loader_global_batch(loader *l, int G, int dp_rank, int dp_size, int32_t *tokens, float *weights,
                        mt_err *err) {
    CHECK(G % dp_size == 0, "global batch %d not divisible by %d ranks", G, dp_size);
    int per_rank = G / dp_size;
    perm p;
    perm_init(&p, (uint64_t)l->n_seq, l->seed, (uint64_t)l->epoch);
    for (int i = 0; i < G; i++) {
        if (i / per_rank == dp_rank) {
            long s = (long)perm_at(&p, (uint64_t)l->cursor);
            int k = i - dp_rank * per_rank;
            if (loader_sequence(l, s, tokens + (size_t)k * (l->T + 1), weights + (size_t)k * l->T, err))
                return -1;
        }
        if (++l->cursor == l->n_seq) {
            l->cursor = 0;
            l->epoch++;
            perm_init(&p, (uint64_t)l->n_seq, l->seed, (uint64_t)l->epoch);
        }
    }
    return 0;
}

int loader_fixed(loader *l, long first, int n, int32_t *tokens, float *weights, mt_err *err) {
    for (int k = 0; k < n; k++) {
        int32_t *tk = tokens + (size_t)k * (l->T + 1);
        float *wk = weights + (size_t)k * l->T;
        if (first + k >= l->n_seq) { /* padding of a last, partial batch: counts nothing */
            memset(tk, 0, (size_t)(l->T + 1) * sizeof *tk);
            memset(wk, 0, (size_t)l->T * sizeof *wk);
        } else if (loader_sequence(l, first + k, tk, wk, err)) {
            return -1;
        }
    }
    return 0;
}
