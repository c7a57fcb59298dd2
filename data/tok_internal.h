/* Private parts of the tokenizer shared by data/tok*.c. */
#ifndef MT_TOK_INTERNAL_H
#define MT_TOK_INTERNAL_H

#include "data/tok.h"

/* Pre-tokenizer code point classes (SPEC 7.3): other symbols, \p{L}, \p{N}, \s. */
enum { TOK_OTHER = 0, TOK_LETTER = 1, TOK_NUMBER = 2, TOK_SPACE = 3 };

typedef struct {
    uint32_t first, last;
    uint8_t cls;
} tok_class_range;

extern const tok_class_range tok_class_ranges[]; /* sorted, from data/tok_unicode.c */
extern const size_t tok_class_range_count;

int tok_class_of(uint32_t cp);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is invalid; then *bad is the length of the
 * maximal invalid subsequence (lead byte plus the continuation bytes that were still possible), which
 * reaches `avail` when the bytes ran out before the sequence was complete. */
size_t tok_utf8_sequence(const uint8_t *s, size_t avail, size_t *bad);

/* Makes text valid UTF-8: NULL if it already is, else a malloc'd copy (length *out_len) with each maximal
 * invalid subsequence replaced by U+FFFD; adds the number of replacements to *replacements. */
char *tok_utf8_sanitize(const char *text, size_t len, size_t *out_len, size_t *replacements);

/* Calls piece(ctx, start, len) for each pre-token of valid UTF-8 text, in order. */
typedef void (*tok_piece_fn)(void *ctx, const uint8_t *piece, size_t len);
void tok_pretokenize(const uint8_t *text, size_t len, tok_piece_fn piece, void *ctx);

/* Merge rule table: (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t merged;
} tok_merge_slot;

/* Cache of whole pieces -> token ids. */
typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len; /* key_len 0 = empty */
    uint32_t ids_off, ids_len;
} tok_cache_slot;

struct tok {
    int32_t vocab_size, eot;
    int32_t byte_id[256];
    char **token_bytes; /* id -> bytes (NULL for an id the vocabulary skips) */
    uint32_t *token_len;
    tok_merge_slot *merges;
    size_t merge_mask;
    /* cache */
    tok_cache_slot *cache;
    size_t cache_mask, cache_used;
    char *cache_keys;
    size_t cache_keys_n, cache_keys_cap;
    int32_t *cache_ids;
    size_t cache_ids_n, cache_ids_cap;
    /* BPE scratch */
    int32_t *sym;
    uint32_t *rank;
    uint32_t *old_index;
    uint8_t *changed;
    size_t scratch_cap;
};

uint64_t tok_hash_bytes(const uint8_t *p, size_t n);
const tok_merge_slot *tok_merge_find(const tok *t, int32_t left, int32_t right);
/* BPE of one pre-token, with the cache; appends its ids. */
void tok_bpe_piece(tok *t, const uint8_t *piece, size_t len, tok_ids *out);
void tok_cache_free(tok *t);

#endif
