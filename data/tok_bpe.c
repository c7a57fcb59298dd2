/* Ranked-merge BPE on one pre-token (SPEC 7.2), with a cache of whole pieces. Follows openai's
 * encoder.py exactly: repeatedly take the adjacent pair of lowest rank and merge all of its
 * non-overlapping occurrences, left to right, until no adjacent pair is a merge rule. */
#include <stdlib.h>
#include <string.h>

#include "data/tok_internal.h"

/* The cache is emptied when full (bounded memory on any input); pieces longer than LONG_PIECE bytes take
 * the O(n log n) path. */
enum { CACHE_MAX_PIECE = 256, CACHE_MAX_ENTRIES = 1 << 20, CACHE_MAX_KEY_BYTES = 64 << 20, LONG_PIECE = 64 };
#define NO_RANK UINT32_MAX

uint64_t tok_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x243F6A8885A308D3ULL ^ (n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
        p += 8, n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 31);
}

const tok_merge_slot *tok_merge_find(const tok *t, int32_t left, int32_t right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    for (size_t i = (h >> 32) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merges[i].key == key)
            return &t->merges[i];
        if (t->merges[i].key == UINT64_MAX)
            return NULL;
    }
}

void tok_ids_push(tok_ids *out, const int32_t *ids, size_t n) {
    if (out->n + n > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->n + n)
            cap *= 2;
        out->ids = realloc(out->ids, cap * sizeof *out->ids);
        CHECK(out->ids, "out of memory (%zu token ids)", cap);
        out->cap = cap;
    }
    memcpy(out->ids + out->n, ids, n * sizeof *ids);
    out->n += n;
}

static uint32_t pair_rank(const tok *t, int32_t left, int32_t right) {
    const tok_merge_slot *m = tok_merge_find(t, left, right);
    return m ? m->rank : NO_RANK;
}

static void scratch_reserve(tok *t, size_t n) {
    if (n <= t->scratch_cap)
        return;
    size_t cap = t->scratch_cap ? t->scratch_cap : 64;
    while (cap < n)
        cap *= 2;
    free(t->sym), free(t->rank), free(t->old_index), free(t->changed);
    t->sym = mt_malloc(cap * sizeof *t->sym);
    t->rank = mt_malloc(cap * sizeof *t->rank);
    t->old_index = mt_malloc(cap * sizeof *t->old_index);
    t->changed = mt_malloc(cap);
    t->scratch_cap = cap;
}

/* Runs BPE on t->sym[0..n) in place; returns the final length. */
static size_t bpe_merge(tok *t, size_t n) {
    int32_t *sym = t->sym;
    uint32_t *rank = t->rank, *old_index = t->old_index;
    uint8_t *changed = t->changed;
    for (size_t i = 0; i + 1 < n; i++)
        rank[i] = pair_rank(t, sym[i], sym[i + 1]);
    while (n > 1) {
        uint32_t best = NO_RANK;
        size_t at = 0;
        for (size_t i = 0; i + 1 < n; i++)
            if (rank[i] < best)
                best = rank[i], at = i;
        if (best == NO_RANK)
            break;
        int32_t merged = tok_merge_find(t, sym[at], sym[at + 1])->merged;
        /* Ranks are unique per pair, so rank[i] == best marks exactly the occurrences of the pair. */
        size_t w = 0, i = 0;
        while (i < n) {
            if (i + 1 < n && rank[i] == best) {
                sym[w] = merged, changed[w] = 1, i += 2;
            } else {
                sym[w] = sym[i], changed[w] = 0, old_index[w] = (uint32_t)i, i += 1;
            }
            w++;
        }
        n = w;
        /* A pair of two unchanged symbols was adjacent before (old_index[k] + 1), so its rank stands. */
        for (size_t k = 0; k + 1 < n; k++)
            rank[k] = changed[k] || changed[k + 1] ? pair_rank(t, sym[k], sym[k + 1]) : rank[old_index[k]];
    }
    return n;
}

/* Long pieces: the same iterations in O(n log n). A min-heap of (rank, position) holds an entry for every
 * adjacent pair ever formed; popping all entries of the lowest rank in position order visits the pair's
 * occurrences left to right. An entry is acted on only if the pair is still there, which also skips an
 * occurrence overlapping one just merged (encoder.py's i += 2). A merge makes pairs with the new symbol,
 * never the pair being merged, so the iteration sees exactly the occurrences it started with. */
typedef struct {
    uint32_t rank, pos;
} heap_entry;

static inline int heap_less(heap_entry a, heap_entry b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(heap_entry *h, size_t *n, heap_entry e) {
    size_t i = (*n)++;
    while (i > 0 && heap_less(e, h[(i - 1) / 2]))
        h[i] = h[(i - 1) / 2], i = (i - 1) / 2;
    h[i] = e;
}

static heap_entry heap_pop(heap_entry *h, size_t *n) {
    heap_entry top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && heap_less(h[c + 1], h[c]))
            c++;
        if (!heap_less(h[c], last))
            break;
        h[i] = h[c], i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

static size_t bpe_merge_long(tok *t, size_t n) {
    int32_t *sym = t->sym;
    /* Doubly linked list over positions; a merged-away position gets sym -1. */
    uint32_t *next = mt_malloc(n * sizeof *next), *prev = mt_malloc(n * sizeof *prev);
    CHECK(n < UINT32_MAX / 4, "piece of %zu bytes is too long", n);
    /* Every merge pushes at most two entries: fewer than 3n in all. */
    heap_entry *heap = mt_malloc(3 * n * sizeof *heap);
    uint32_t *todo = mt_malloc(3 * n * sizeof *todo);
    size_t heap_n = 0;
    for (size_t i = 0; i < n; i++)
        next[i] = (uint32_t)(i + 1), prev[i] = (uint32_t)(i - 1);
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = pair_rank(t, sym[i], sym[i + 1]);
        if (r != NO_RANK)
            heap_push(heap, &heap_n, (heap_entry){r, (uint32_t)i});
    }
    while (heap_n) {
        /* Take the whole iteration first: with a vocabulary whose ranks are not in training order, a
         * merge could make a pair of lower rank, which belongs to the next iteration. */
        uint32_t rank = heap[0].rank;
        size_t count = 0;
        while (heap_n && heap[0].rank == rank)
            todo[count++] = heap_pop(heap, &heap_n).pos;
        for (size_t k = 0; k < count; k++) {
            uint32_t p = todo[k], q = next[p];
            if (sym[p] < 0 || q >= n)
                continue;
            const tok_merge_slot *m = tok_merge_find(t, sym[p], sym[q]);
            if (!m || m->rank != rank)
                continue;
            sym[p] = m->merged, sym[q] = -1;
            next[p] = next[q];
            if (next[q] < n)
                prev[next[q]] = p;
            if (p > 0 && prev[p] < n) {
                uint32_t r = pair_rank(t, sym[prev[p]], sym[p]);
                if (r != NO_RANK)
                    heap_push(heap, &heap_n, (heap_entry){r, prev[p]});
            }
            if (next[p] < n) {
                uint32_t r = pair_rank(t, sym[p], sym[next[p]]);
                if (r != NO_RANK)
                    heap_push(heap, &heap_n, (heap_entry){r, p});
            }
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (sym[i] >= 0)
            sym[w++] = sym[i];
    free(next), free(prev), free(heap), free(todo);
    return w;
}

static void cache_grow(tok *t) {
    size_t cap = t->cache ? 2 * (t->cache_mask + 1) : 1 << 14;
    tok_cache_slot *slots = mt_calloc(cap, sizeof *slots);
    if (t->cache) {
        for (size_t i = 0; i <= t->cache_mask; i++) {
            if (!t->cache[i].key_len)
                continue;
            size_t j = t->cache[i].hash & (cap - 1);
            while (slots[j].key_len)
                j = (j + 1) & (cap - 1);
            slots[j] = t->cache[i];
        }
        free(t->cache);
    }
    t->cache = slots;
    t->cache_mask = cap - 1;
}

static void cache_clear(tok *t) {
    memset(t->cache, 0, (t->cache_mask + 1) * sizeof *t->cache);
    t->cache_used = t->cache_keys_n = t->cache_ids_n = 0;
}

void tok_cache_free(tok *t) {
    free(t->cache), free(t->cache_keys), free(t->cache_ids);
    free(t->sym), free(t->rank), free(t->old_index), free(t->changed);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 1 << 16;
    while (c < need)
        c *= 2;
    p = realloc(p, c * elem);
    CHECK(p, "out of memory (tokenizer cache)");
    *cap = c;
    return p;
}

static void cache_insert(tok *t, uint64_t h, const uint8_t *piece, size_t len, const int32_t *ids, size_t n) {
    if (t->cache_used >= CACHE_MAX_ENTRIES || t->cache_keys_n + len > CACHE_MAX_KEY_BYTES)
        cache_clear(t);
    if (!t->cache || 2 * (t->cache_used + 1) > t->cache_mask + 1)
        cache_grow(t);
    t->cache_keys = grow(t->cache_keys, &t->cache_keys_cap, t->cache_keys_n + len, 1);
    t->cache_ids = grow(t->cache_ids, &t->cache_ids_cap, t->cache_ids_n + n, sizeof *ids);
    size_t j = h & t->cache_mask;
    while (t->cache[j].key_len)
        j = (j + 1) & t->cache_mask;
    t->cache[j] =
        (tok_cache_slot){h, (uint32_t)t->cache_keys_n, (uint32_t)len, (uint32_t)t->cache_ids_n, (uint32_t)n};
    memcpy(t->cache_keys + t->cache_keys_n, piece, len);
    memcpy(t->cache_ids + t->cache_ids_n, ids, n * sizeof *ids);
    t->cache_keys_n += len, t->cache_ids_n += n, t->cache_used++;
}

static const tok_cache_slot *cache_find(const tok *t, uint64_t h, const uint8_t *piece, size_t len) {
    if (!t->cache)
        return NULL;
    for (size_t j = h & t->cache_mask; t->cache[j].key_len; j = (j + 1) & t->cache_mask) {
        const tok_cache_slot *c = &t->cache[j];
        if (c->hash == h && c->key_len == len && !memcmp(t->cache_keys + c->key_off, piece, len))
            return c;
    }
    return NULL;
}

void tok_bpe_piece(tok *t, const uint8_t *piece, size_t len, tok_ids *out) {
    if (len == 1) {
        tok_ids_push(out, &t->byte_id[piece[0]], 1);
        return;
    }
    int cacheable = len <= CACHE_MAX_PIECE;
    uint64_t h = 0;
    if (cacheable) {
        h = tok_hash_bytes(piece, len);
        const tok_cache_slot *c = cache_find(t, h, piece, len);
        if (c) {
            tok_ids_push(out, t->cache_ids + c->ids_off, c->ids_len);
            return;
        }
    }
    scratch_reserve(t, len);
    for (size_t i = 0; i < len; i++)
        t->sym[i] = t->byte_id[piece[i]];
    size_t n = len > LONG_PIECE ? bpe_merge_long(t, len) : bpe_merge(t, len);
    tok_ids_push(out, t->sym, n);
    if (cacheable)
        cache_insert(t, h, piece, len, t->sym, n);
}
