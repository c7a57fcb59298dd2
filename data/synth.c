#include "data/synth.h"

#include <stdio.h>
#include <stdlib.h>

#include "data/shard_writer.h"

static uint64_t next(uint64_t *s) {
    uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int synth_write_shard(const char *path, const synth_options *o, mt_err *err) {
    /* The chain's table is a function of the vocabulary only (seed 0), so shards with different seeds
     * share one language: a validation shard measures what training learned. */
    int V = o->vocab_size, K = o->branch;
    int32_t *succ = mt_malloc((size_t)V * K * sizeof *succ);
    uint64_t table_state = 0x5eed;
    for (int i = 0; i < V * K; i++) {
        int32_t t = (int32_t)(next(&table_state) % (uint64_t)V);
        succ[i] = t == o->eot_token ? (t + 1) % V : t;
    }
    char source[128];
    snprintf(source, sizeof source, "synthetic markov chain: vocab %d, branch %d, seed %llu", V, K,
             (unsigned long long)o->seed);
    shard_writer *w = shard_writer_open(path, "synthetic", V, o->eot_token, source, 0, err);
    if (!w) {
        free(succ);
        return -1;
    }
    uint64_t s = o->seed * 0x9e3779b97f4a7c15ULL + 17;
    int32_t *doc = mt_malloc((size_t)(o->max_doc + 1) * sizeof *doc);
    int rc = 0;
    while (!rc && shard_writer_tokens(w) < o->n_tokens) {
        long len = o->min_doc + (long)(next(&s) % (uint64_t)(o->max_doc - o->min_doc + 1));
        int32_t t = (int32_t)(next(&s) % (uint64_t)V);
        if (t == o->eot_token)
            t = (t + 1) % V;
        for (long i = 0; i < len; i++) {
            doc[i] = t;
            /* the first successor half of the time, else one of the others uniformly */
            uint64_t r = next(&s);
            int k = (r & 1) ? 0 : (int)((r >> 1) % (uint64_t)K);
            t = succ[(size_t)t * K + k];
        }
        doc[len] = o->eot_token;
        rc = shard_writer_append(w, doc, NULL, len + 1, err);
        shard_writer_end_doc(w, NULL);
    }
    free(doc);
    free(succ);
    if (rc) {
        shard_writer_abort(w);
        return -1;
    }
    return shard_writer_close(w, err);
}
