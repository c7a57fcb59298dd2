/* The one pass over a dataset before training (DESIGN 8): a bad shard is refused before step 1 instead of
 * failing in the middle of a run when the loader reaches it. */
#include <stdlib.h>

#include "data/loader.h"

/* Whether token position p of shard s is ever a target (a prediction the loss counts): every position of a
 * stream window but its first, and positions 1..T of an example. doc is the document holding p. */
static int is_target(const loader *l, int s, long p, long doc_start) {
    if (l->kind == LOADER_EXAMPLES)
        return p > doc_start && p - doc_start <= l->T;
    long g = l->first_token[s] + p;
    return g % (l->T + 1) != 0 && g < l->n_seq * (l->T + 1);
}

int loader_check_shard(loader *l, int s, int eot_token, mt_err *err) {
    shard *sh = &l->shards[s];
    if (sh->eot_token != eot_token)
        return mt_fail(err, "%s: eot_token %d differs from the model's eot_token %d", sh->path, sh->eot_token,
                       eot_token);
    uint64_t *docs;
    if (shard_doc_offsets(sh, &docs, err))
        return -1;
    enum { CHUNK = 1 << 20 };
    int32_t *tok = mt_malloc(CHUNK * sizeof *tok);
    int rc = 0;
    long d = 0;
    for (long start = 0; start < sh->n_tokens && !rc; start += CHUNK) {
        long n = sh->n_tokens - start < CHUNK ? sh->n_tokens - start : CHUNK;
        rc = shard_read(sh, start, n, tok, NULL, err);
        for (long i = 0; i < n && !rc; i++) {
            long p = start + i;
            while ((long)docs[d + 1] <= p)
                d++;
            if (tok[i] < 0 || tok[i] >= l->vocab_size)
                rc = mt_fail(err, "%s: token id %d at offset %ld is not below the model's vocab_size %d",
                             sh->path, tok[i], p, l->vocab_size);
            else if (tok[i] >= l->loss_vocab && is_target(l, s, p, (long)docs[d]))
                rc = mt_fail(err, "%s: token id %d at offset %ld is a target but not below loss_vocab %d",
                             sh->path, tok[i], p, l->loss_vocab);
        }
    }
    free(tok);
    free(docs);
    return rc;
}
