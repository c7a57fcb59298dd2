/* GPT-2 byte-level BPE tokenizer (SPEC 7, DESIGN 6), exact on every input: the pre-tokenization regex is
 * hand-written over code point classes taken from GPT-2's own regex engine (Python `regex`, Unicode 15.0),
 * and BPE applies the ranked merges exactly as openai's encoder.py does. `<|endoftext|>` is never special
 * inside text: callers append tok_eot() themselves. A tok holds a cache, so use one per thread. */
#ifndef MT_TOK_H
#define MT_TOK_H

#include "base/bytes.h"
#include "base/common.h"

typedef struct tok tok;

/* A growable array of token ids; zero-initialize, append with tok_encode, release with tok_ids_free. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} tok_ids;

/* Reads encoder.json (token string -> id) and vocab.bpe (version line, then one merge per line). NULL with
 * err set on bad input. */
tok *tok_load(const char *encoder_json_path, const char *vocab_bpe_path, mt_err *err);
void tok_free(tok *t);

int32_t tok_eot(const tok *t);        /* id of "<|endoftext|>", or -1 if the vocabulary lacks it */
int32_t tok_vocab_size(const tok *t); /* largest id + 1 */

/* Appends the tokens of len bytes of text to out. Invalid UTF-8 is decoded as Python's errors='replace'
 * does: each maximal invalid subsequence becomes U+FFFD; their number is added to *replacements (if not
 * NULL). */
void tok_encode(tok *t, const char *text, size_t len, tok_ids *out, size_t *replacements);

/* Appends the bytes of the tokens to out (raw: a token may end inside a UTF-8 character). -1 with err
 * set for an id outside the vocabulary. */
int tok_decode(const tok *t, const int32_t *ids, size_t n, mt_bytes *out, mt_err *err);

/* Streams the bytes of tokens out as text while they are produced: a character whose bytes are split
 * across tokens is held until it is complete, and each maximal invalid subsequence becomes U+FFFD, so the
 * concatenated output equals the decoding of all the bytes at once (SPEC 7.2: errors='replace'). */
typedef struct {
    mt_bytes pending; /* bytes not decided yet: at most an incomplete character between calls */
} tok_utf8_stream;

/* Appends to out the text of `bytes` that is decided. */
void tok_utf8_stream_feed(tok_utf8_stream *s, const char *bytes, size_t n, mt_bytes *out);
/* The end: an incomplete character still held becomes U+FFFD. The stream can be fed again. */
void tok_utf8_stream_finish(tok_utf8_stream *s, mt_bytes *out);
void tok_utf8_stream_free(tok_utf8_stream *s);

/* Appends n ids to out (growing it). */
void tok_ids_push(tok_ids *out, const int32_t *ids, size_t n);
void tok_ids_free(tok_ids *ids);

#endif
