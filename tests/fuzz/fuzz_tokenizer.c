/* Fuzz target: the GPT-2 tokenizer (data/tok*.c) with the real vocabulary ($MESHTRAIN_CACHE/gpt2, else
 * .cache/gpt2; `make vocab`). Even first byte: the rest is text to encode. Properties: every id is in the
 * vocabulary, and decoding the ids gives the text back, with each maximal invalid UTF-8 subsequence as
 * U+FFFD (what the streaming UTF-8 decoder makes of the raw text). Odd first byte: the rest is ids (2
 * bytes each, some beyond the vocabulary) to decode. Properties: an id outside the vocabulary is an error;
 * otherwise the streaming decoder fed token by token gives the text of all the bytes at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tok.h"
#include "tests/fuzz/input.h"

static tok *tk;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *cache = getenv("MESHTRAIN_CACHE");
    char enc[4200], bpe[4200];
    snprintf(enc, sizeof enc, "%s/gpt2/encoder.json", cache && *cache ? cache : ".cache");
    snprintf(bpe, sizeof bpe, "%s/gpt2/vocab.bpe", cache && *cache ? cache : ".cache");
    mt_err err;
    tk = tok_load(enc, bpe, &err);
    if (!tk) {
        fprintf(stderr, "fuzz_tokenizer: %s (make vocab; MESHTRAIN_CACHE)\n", err.msg);
        exit(2);
    }
    return 0;
}

static int same(const char *a, size_t na, const char *b, size_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, na)); /* memcmp must not see NULL, even for 0 bytes */
}

/* The text of raw bytes as Python's decode(errors='replace') gives it. */
static void as_text(const char *bytes, size_t n, mt_bytes *out) {
    tok_utf8_stream s = {{0}};
    tok_utf8_stream_feed(&s, bytes, n, out);
    tok_utf8_stream_finish(&s, out);
    tok_utf8_stream_free(&s);
}

static void encode(const char *text, size_t n) {
    tok_ids ids = {0};
    mt_bytes back = {0}, want = {0};
    size_t repl = 0;
    tok_encode(tk, text, n, &ids, &repl);
    for (size_t i = 0; i < ids.n; i++)
        fz_check(ids.ids[i] >= 0 && ids.ids[i] < tok_vocab_size(tk), "an id in the vocabulary");
    mt_err err;
    fz_check(tok_decode(tk, ids.ids, ids.n, &back, &err) == 0, "the ids of a text decode");
    as_text(text, n, &want);
    fz_check(same(back.data, back.n, want.data, want.n), "decode(encode(text)) is the text");
    fz_check((repl == 0) == same(want.data, want.n, text, n), "replacements counted iff any");
    tok_ids_free(&ids);
    mt_bytes_free(&back);
    mt_bytes_free(&want);
}

static void decode(const uint8_t *d, size_t n) {
    size_t count = n / 2;
    int32_t *ids = malloc((count ? count : 1) * sizeof *ids);
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        ids[i] = (int32_t)((d[2 * i] | d[2 * i + 1] << 8) % (tok_vocab_size(tk) + 64)) - 32;
        bad |= ids[i] < 0 || ids[i] >= tok_vocab_size(tk);
    }
    mt_bytes all = {0}, whole = {0}, streamed = {0}, one = {0};
    mt_err err;
    int rc = tok_decode(tk, ids, count, &all, &err);
    fz_check((rc != 0) == bad, "an id outside the vocabulary is an error, and only that");
    if (!rc) {
        as_text(all.data, all.n, &whole);
        tok_utf8_stream s = {{0}};
        for (size_t i = 0; i < count; i++) {
            one.n = 0;
            fz_check(tok_decode(tk, &ids[i], 1, &one, &err) == 0, "one id decodes");
            tok_utf8_stream_feed(&s, one.data, one.n, &streamed);
        }
        tok_utf8_stream_finish(&s, &streamed);
        tok_utf8_stream_free(&s);
        fz_check(same(streamed.data, streamed.n, whole.data, whole.n),
                 "streamed text = the text of all the bytes");
    }
    free(ids);
    mt_bytes_free(&all);
    mt_bytes_free(&whole);
    mt_bytes_free(&streamed);
    mt_bytes_free(&one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    if (data[0] & 1)
        decode(data + 1, size - 1);
    else
        encode((const char *)data + 1, size - 1);
    return 0;
}
