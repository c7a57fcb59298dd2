/* GPT-2 tokenizer checks (data/tok.h, SPEC 7).
 *
 * With no arguments: code point classes at the places where engines disagree (SPEC 7.3), pre-token
 * splits, the U+FFFD policy for invalid UTF-8, and (when the vocabulary is in the cache) known ids.
 * tests/test_tokenizer.sh also runs the other modes:
 *   classes                          the class of every code point, one byte each, on stdout
 *   compare LABEL ENC VOCAB REF DOC...  ids equal to a reference (REF: per document uint32 n, n uint32 ids)
 *                                    and decode(encode(x)) == x; DOC: a JSON array of strings, or a .bin
 *                                    file of raw documents (uint32 length, bytes) that may be invalid UTF-8
 *   bench ENC VOCAB DOC...           MB/s of tok_encode on one core */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "data/tok.h"
#include "data/tok_internal.h"
#include "tests/testutil.h"

/* ------------------------------------------------------------------ documents */

typedef struct {
    char **text;
    size_t *len;
    size_t n, cap;
    int raw; /* from a .bin file: may be invalid UTF-8 */
} doc_list;

static void docs_add(doc_list *d, const char *text, size_t len) {
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 1024;
        d->text = realloc(d->text, d->cap * sizeof *d->text);
        d->len = realloc(d->len, d->cap * sizeof *d->len);
        CHECK(d->text && d->len, "out of memory");
    }
    d->text[d->n] = mt_malloc(len + 1);
    memcpy(d->text[d->n], text, len);
    d->text[d->n][len] = 0;
    d->len[d->n++] = len;
}

static int docs_read(doc_list *d, const char *path) {
    mt_err err;
    size_t len;
    char *buf = mt_read_file(path, &len, &err);
    if (!buf)
        return fprintf(stderr, "%s\n", err.msg), -1;
    size_t n = strlen(path);
    if (n > 4 && !strcmp(path + n - 4, ".bin")) {
        d->raw = 1;
        for (size_t at = 0; at + 4 <= len;) {
            uint32_t l;
            memcpy(&l, buf + at, 4);
            CHECK(at + 4 + l <= len, "%s: truncated", path);
            docs_add(d, buf + at + 4, l);
            at += 4 + l;
        }
    } else {
        cJSON *root = cJSON_ParseWithLength(buf, len);
        CHECK(cJSON_IsArray(root), "%s: not a JSON array", path);
        for (cJSON *e = root->child; e; e = e->next) {
            CHECK(cJSON_IsString(e), "%s: not a string", path);
            docs_add(d, e->valuestring, strlen(e->valuestring));
        }
        cJSON_Delete(root);
    }
    free(buf);
    return 0;
}

static tok *load_or_die(const char *enc, const char *vocab) {
    mt_err err;
    tok *t = tok_load(enc, vocab, &err);
    if (!t) {
        printf("FAIL tok_load: %s\n", err.msg);
        exit(1);
    }
    return t;
}

/* ------------------------------------------------------------------ unit checks */

static void check_classes(void) {
    struct {
        uint32_t cp;
        int cls;
        const char *why;
    } cases[] = {
        {'a', TOK_LETTER, "ASCII letter"},
        {'7', TOK_NUMBER, "digit"},
        {'_', TOK_OTHER, "underscore"},
        {' ', TOK_SPACE, "space"},
        {'\t', TOK_SPACE, "tab"},
        {0x0B, TOK_SPACE, "vertical tab"},
        {0x85, TOK_SPACE, "U+0085 NEL is White_Space (regex module; JS disagrees)"},
        {0x1C, TOK_OTHER, "U+001C not \\s in regex module (Python re disagrees)"},
        {0x1F, TOK_OTHER, "U+001F not \\s in regex module"},
        {0xFEFF, TOK_OTHER, "U+FEFF not \\s in regex module (JS disagrees)"},
        {0x180E, TOK_OTHER, "U+180E not \\s in regex module (PCRE2 10.42 disagrees)"},
        {0xA0, TOK_SPACE, "NBSP"},
        {0x3000, TOK_SPACE, "ideographic space"},
        {0x200B, TOK_OTHER, "ZWSP"},
        {0x4E00, TOK_LETTER, "CJK"},
        {0x0301, TOK_OTHER, "combining acute (Mn)"},
        {0x0660, TOK_NUMBER, "Arabic-Indic zero"},
        {0x2160, TOK_NUMBER, "Roman numeral (Nl)"},
        {0x00B2, TOK_NUMBER, "superscript two (No)"},
        {0x05D0, TOK_LETTER, "Hebrew alef"},
        {0x11F04, TOK_LETTER, "Kawi letter (new in Unicode 15.0)"},
        {0x1F600, TOK_OTHER, "emoji"},
        {0x10FFFF, TOK_OTHER, "noncharacter"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (tok_class_of(cases[i].cp) != cases[i].cls) {
            bad++;
            printf("#   U+%04X: class %d, want %d (%s)\n", cases[i].cp, tok_class_of(cases[i].cp),
                   cases[i].cls, cases[i].why);
        }
    tu_check(!bad, "tok_classes_where_engines_disagree", "%d code points misclassified", bad);
    /* tok_class_of's ASCII fast path against the generated ranges, and the ranges sorted and disjoint. */
    bad = 0;
    for (uint32_t c = 0; c < 128; c++) {
        int want = TOK_OTHER;
        for (size_t r = 0; r < tok_class_range_count; r++)
            if (c >= tok_class_ranges[r].first && c <= tok_class_ranges[r].last)
                want = tok_class_ranges[r].cls;
        bad += tok_class_of(c) != want;
    }
    for (size_t r = 0; r < tok_class_range_count; r++)
        bad += tok_class_ranges[r].first > tok_class_ranges[r].last ||
               (r && tok_class_ranges[r].first <= tok_class_ranges[r - 1].last);
    tu_check(!bad, "tok_class_table_consistent", "%d ASCII classes or ranges wrong", bad);
}

typedef struct {
    char out[512];
    size_t n;
} split_buf;

static void collect_piece(void *ctx, const uint8_t *piece, size_t len) {
    split_buf *b = ctx;
    if (b->n)
        b->out[b->n++] = '|';
    memcpy(b->out + b->n, piece, len);
    b->n += len;
    b->out[b->n] = 0;
}

static void check_splits(void) {
    const char *cases[][2] = {
        {"Hello world", "Hello| world"},
        {"a\r\nb", "a|\r|\n|b"},
        {"a\rb\n", "a|\r|b|\n"},
        {"don't I'M we're you'LL", "don|'t| I|'|M| we|'re| you|'|LL"},
        {"a  b", "a| | b"},
        {"a   \n\nb", "a|   \n|\n|b"},
        {"x  ", "x|  "},
        {"123abc 4,5", "123|abc| 4|,|5"},
        {" 's", " '|s"},
        {"''s", "''|s"},
        {"hi!!! ok", "hi|!!!| ok"},
        {"\xc2\x85x", "\xc2\x85|x"},
        {" \xc2\x85x", " |\xc2\x85|x"},
        {"a\xef\xbb\xbf"
         "b",
         "a|\xef\xbb\xbf|b"},
        {"a \xef\xbb\xbf"
         "b",
         "a| \xef\xbb\xbf|b"},
        {"a\xe1\xa0\x8e"
         "b",
         "a|\xe1\xa0\x8e|b"},
        {"a\x1c"
         "b",
         "a|\x1c|b"},
        {"e\xcc\x81t\xc3\xa9", "e|\xcc\x81|t\xc3\xa9"},
        {"\t\tx", "\t|\t|x"},
        {"  ", "  "},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        split_buf b = {{0}, 0};
        tok_pretokenize((const uint8_t *)cases[i][0], strlen(cases[i][0]), collect_piece, &b);
        if (strcmp(b.out, cases[i][1])) {
            bad++;
            printf("#   case %zu: got \"%s\", want \"%s\"\n", i, b.out, cases[i][1]);
        }
    }
    tu_check(!bad, "tok_pretokenize_splits", "%d of %zu cases wrong", bad, sizeof cases / sizeof cases[0]);
}

static void check_sanitize(void) {
#define R "\xef\xbf\xbd"
    struct {
        const char *in;
        size_t len;
        const char *out;
        size_t count;
    } cases[] = {
        {"plain", 5, NULL, 0},
        {"\xff", 1, R, 1},
        {"a\xc3(", 3, "a" R "(", 1},
        {"\xe2\x82", 2, R, 1}, /* truncated 3-byte sequence: one maximal subpart */
        {"\xe2\x82x", 3, R "x", 1},
        {"\xf0\x80\x80", 3, R R R, 3},       /* F0 80: overlong, so F0 alone is invalid */
        {"\xed\xa0\x80", 3, R R R, 3},       /* a surrogate */
        {"\xf4\x90\x80\x80", 4, R R R R, 4}, /* above U+10FFFF */
        {"\xc0\xaf", 2, R R, 2},             /* overlong '/' */
        {"\xf0\x9f\x98", 3, R, 1},           /* truncated emoji */
        {"\xf0\x9f\x98\x80\x80", 5, "\xf0\x9f\x98\x80" R, 1},
        {"\xef\xbb\xbf"
         "a",
         4, NULL, 0}, /* a BOM is text */
        {"a\0b", 3, NULL, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t count = 0, n = 0;
        char *out = tok_utf8_sanitize(cases[i].in, cases[i].len, &n, &count);
        int ok = cases[i].out ? out && n == strlen(cases[i].out) && !memcmp(out, cases[i].out, n) : !out;
        if (!ok || count != cases[i].count) {
            bad++;
            printf("#   case %zu: wrong replacement (count %zu, want %zu)\n", i, count, cases[i].count);
        }
        free(out);
    }
    tu_check(!bad, "tok_invalid_utf8_replacement", "%d cases wrong", bad);
#undef R
}

/* Streams x in the pieces cut at the given offsets (ascending, < n), then finishes. */
static void stream_pieces(const char *x, size_t n, const size_t *cuts, int n_cuts, mt_bytes *out) {
    tok_utf8_stream st = {{0}};
    size_t at = 0;
    out->n = 0;
    for (int c = 0; c <= n_cuts; c++) {
        size_t end = c < n_cuts ? cuts[c] : n;
        tok_utf8_stream_feed(&st, x + at, end - at, out);
        at = end;
    }
    tok_utf8_stream_finish(&st, out);
    tok_utf8_stream_free(&st);
}

/* Whether streaming x in pieces gives what decoding it at once gives (the sanitizer checked above). */
static int stream_matches(const char *x, size_t n, const size_t *cuts, int n_cuts, mt_bytes *out) {
    size_t clean_n = n;
    char *clean = tok_utf8_sanitize(x, n, &clean_n, NULL);
    stream_pieces(x, n, cuts, n_cuts, out);
    int ok = out->n == clean_n && (!clean_n || !memcmp(out->data, clean ? clean : x, clean_n));
    free(clean);
    return ok;
}

/* The UTF-8 stream of generated text: every split of every sanitizer case into up to three pieces, a
 * character split across two and three feeds, and 3000 random byte strings biased towards UTF-8 lead and
 * continuation bytes cut at random places, all equal to decoding the whole bytes at once. */
static void check_utf8_stream(void) {
    static const char *const CASES[] = {"\xe2\x82\xac",
                                        "a\xe2\x82",
                                        "\xf0\x9f\x98\x80!",
                                        "\xc3(\xe2\x82x",
                                        "\xf0\x80\x80",
                                        "\xed\xa0\x80",
                                        "\xf4\x90\x80\x80z",
                                        "\xc0\xaf",
                                        "\xf0\x9f\x98",
                                        "\xef\xbb\xbf"
                                        "a\xff\xfe"};
    mt_bytes out = {0};
    int bad = 0;
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        size_t n = strlen(CASES[c]);
        for (size_t i = 0; i <= n; i++)
            for (size_t j = i; j <= n; j++) {
                size_t cuts[2] = {i, j};
                bad += !stream_matches(CASES[c], n, cuts, 2, &out);
            }
    }
    tu_check(!bad, "tok_utf8_stream_splits", "%d splits of the fixed cases differ from whole decoding", bad);
    static const uint8_t POOL[] = {'a',  ' ',  0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
                                   0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff, 0x00, '\n'};
    char x[64];
    size_t cuts[8];
    bad = 0;
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = (size_t)tu_int(40);
        for (size_t i = 0; i < n; i++)
            x[i] = (char)POOL[tu_int((int)sizeof POOL)];
        int n_cuts = tu_int(8);
        for (int c = 0; c < n_cuts; c++)
            cuts[c] = n ? (size_t)tu_int((int)n + 1) : 0;
        for (int a = 1; a < n_cuts; a++) /* ascending */
            for (int b = a; b > 0 && cuts[b - 1] > cuts[b]; b--) {
                size_t t = cuts[b];
                cuts[b] = cuts[b - 1];
                cuts[b - 1] = t;
            }
        bad += !stream_matches(x, n, cuts, n_cuts, &out);
    }
    tu_check(!bad, "tok_utf8_stream_random", "%d of 3000 random byte strings differ from whole decoding",
             bad);
    mt_bytes_free(&out);
}

static int ids_equal(const tok_ids *a, const int32_t *b, size_t n) {
    return a->n == n && !memcmp(a->ids, b, n * sizeof *b);
}

static void check_vocab(const char *dir) {
    char enc[4200], vocab[4200];
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.bpe", dir);
    FILE *f = fopen(enc, "rb");
    if (!f) {
        tu_check(0, "tok_vocab_present", "%s missing: run make vocab (make test does)", enc);
        return;
    }
    fclose(f);
    tok *t = load_or_die(enc, vocab);
    tu_check(tok_vocab_size(t) == 50257 && tok_eot(t) == 50256, "tok_vocab_eot", "vocab %d, eot %d",
             tok_vocab_size(t), tok_eot(t));
    struct {
        const char *text;
        int32_t ids[8];
        size_t n;
    } cases[] = {
        {"Hello world", {15496, 995}, 2},
        {" ", {220}, 1},
        {"\n", {198}, 1},
        {"!", {0}, 1},
        {" the", {262}, 1},
        {" t", {256}, 1},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tok_ids ids = {0};
        tok_encode(t, cases[i].text, strlen(cases[i].text), &ids, NULL);
        bad += !ids_equal(&ids, cases[i].ids, cases[i].n);
        tok_ids_free(&ids);
    }
    tu_check(!bad, "tok_known_ids", "%d cases wrong", bad);
    /* <|endoftext|> in text is ordinary text (SPEC 7.3). */
    tok_ids ids = {0};
    const char *eot_text = "a<|endoftext|>b";
    tok_encode(t, eot_text, strlen(eot_text), &ids, NULL);
    int has_eot = 0;
    for (size_t i = 0; i < ids.n; i++)
        has_eot |= ids.ids[i] == 50256;
    mt_bytes back = {0};
    mt_err err;
    int ok = tok_decode(t, ids.ids, ids.n, &back, &err) == 0 && back.n == strlen(eot_text) &&
             !memcmp(back.data, eot_text, back.n);
    tu_check(!has_eot && ok, "tok_eot_not_special_in_text", "eot id produced or round trip failed");
    int32_t bad_id = 50257;
    tu_check(tok_decode(t, &bad_id, 1, &back, &err) < 0, "tok_decode_rejects_bad_id", "accepted id 50257");
    /* Invalid bytes encode as their U+FFFD replacement. */
    size_t repl = 0;
    tok_ids a = {0}, b = {0};
    tok_encode(t, "x\xff\xfey\xe2\x82", 6, &a, &repl);
    tok_encode(t, "x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd", 11, &b, NULL);
    tu_check(repl == 3 && a.n == b.n && !memcmp(a.ids, b.ids, a.n * sizeof *a.ids), "tok_encode_invalid_utf8",
             "replacements %zu (want 3) or ids differ from the U+FFFD text", repl);
    tok_ids_free(&a), tok_ids_free(&b), tok_ids_free(&ids), mt_bytes_free(&back);
    tok_free(t);
    /* Bad files give a one-line error naming the file (and line). */
    char bad_vocab[] = "/tmp/mt_tok_bad_vocab_XXXXXX";
    int fd = mkstemp(bad_vocab);
    FILE *bf = fd >= 0 ? fdopen(fd, "w") : NULL;
    CHECK(bf, "cannot create a temporary file");
    fputs("#version: 0.2\nĠ t\nnot-a-merge\n", bf);
    fclose(bf);
    mt_err e1 = {{0}}, e2 = {{0}};
    tok *t1 = tok_load("/nonexistent/encoder.json", vocab, &e1);
    tok *t2 = tok_load(enc, bad_vocab, &e2);
    remove(bad_vocab);
    tu_check(!t1 && strstr(e1.msg, "/nonexistent/encoder.json") && !t2 && strstr(e2.msg, ":3:"),
             "tok_load_bad_files", "errors \"%s\", \"%s\"", e1.msg, e2.msg);
    printf("#   %s\n#   %s\n", e1.msg, e2.msg);
    tok_free(t1), tok_free(t2);
}

/* ------------------------------------------------------------------ modes */

static int mode_classes(void) {
    for (uint32_t cp = 0; cp < 0x110000; cp++)
        putchar(tok_class_of(cp));
    return 0;
}

/* argv: compare LABEL ENC VOCAB REF DOC... */
static int mode_compare(int argc, char **argv) {
    const char *label = argv[2];
    tok *t = load_or_die(argv[3], argv[4]);
    mt_err err;
    size_t ref_len;
    char *ref = mt_read_file(argv[5], &ref_len, &err);
    if (!ref)
        return printf("FAIL tok_compare[%s]: %s\n", label, err.msg), 1;
    size_t ref_at = 0, n_docs = 0, tokens = 0, mismatched = 0, roundtrip_bad = 0, bytes = 0, repl = 0;
    int raw = 0;
    tok_ids ids = {0};
    mt_bytes back = {0};
    for (int f = 6; f < argc; f++) {
        doc_list docs = {0};
        if (docs_read(&docs, argv[f]))
            return printf("FAIL tok_compare[%s]: cannot read %s\n", label, argv[f]), 1;
        raw |= docs.raw;
        for (size_t d = 0; d < docs.n; d++) {
            CHECK(ref_at + 4 <= ref_len, "reference ends early");
            uint32_t n;
            memcpy(&n, ref + ref_at, 4);
            const int32_t *want = (const int32_t *)(ref + ref_at + 4);
            ref_at += 4 + 4 * (size_t)n;
            CHECK(ref_at <= ref_len, "reference truncated");
            ids.n = 0;
            size_t r = 0;
            tok_encode(t, docs.text[d], docs.len[d], &ids, &r);
            repl += r;
            tokens += ids.n, bytes += docs.len[d];
            if (!ids_equal(&ids, want, n)) {
                size_t k = 0;
                while (k < ids.n && k < n && ids.ids[k] == want[k])
                    k++;
                if (mismatched++ < 5)
                    printf("#   %s doc %zu: first difference at token %zu (ours %d, reference %d; %zu vs %u "
                           "tokens)\n",
                           argv[f], d, k, k < ids.n ? ids.ids[k] : -1, k < n ? want[k] : -1, ids.n, n);
            }
            back.n = 0;
            CHECK(tok_decode(t, ids.ids, ids.n, &back, &err) == 0, "%s", err.msg);
            size_t clean_len = docs.len[d];
            char *clean = tok_utf8_sanitize(docs.text[d], docs.len[d], &clean_len, NULL);
            const char *x = clean ? clean : docs.text[d];
            if (back.n != clean_len || memcmp(back.data, x, clean_len))
                roundtrip_bad++;
            free(clean);
        }
        n_docs += docs.n;
        for (size_t d = 0; d < docs.n; d++)
            free(docs.text[d]);
        free(docs.text), free(docs.len);
    }
    printf("# %s: %zu docs, %zu bytes, %zu tokens compared, %zu U+FFFD replacements\n", label, n_docs, bytes,
           tokens, repl);
    char check[256];
    snprintf(check, sizeof check, "tok_equals_reference[%s]", label);
    tu_check(!mismatched && ref_at == ref_len, check,
             "%zu of %zu documents differ (%zu reference bytes left)", mismatched, n_docs, ref_len - ref_at);
    snprintf(check, sizeof check, "tok_decode_roundtrip[%s]", label);
    tu_check(!roundtrip_bad, check, "%zu of %zu documents do not round-trip%s", roundtrip_bad, n_docs,
             raw ? " (to their U+FFFD-replaced text)" : "");
    tok_ids_free(&ids), mt_bytes_free(&back);
    free(ref);
    tok_free(t);
    return tu_exit();
}

static int mode_bench(int argc, char **argv) {
    tok *t = load_or_die(argv[2], argv[3]);
    doc_list docs = {0};
    for (int f = 4; f < argc; f++)
        if (docs_read(&docs, argv[f]))
            return 1;
    size_t bytes = 0, tokens = 0;
    tok_ids ids = {0};
    double start = mt_now();
    for (size_t d = 0; d < docs.n; d++) {
        ids.n = 0;
        tok_encode(t, docs.text[d], docs.len[d], &ids, NULL);
        bytes += docs.len[d], tokens += ids.n;
    }
    double s = mt_now() - start;
    printf("%.1f MB/s (%zu docs, %.1f MB, %zu tokens, %.2f s, one core)\n", bytes / s / 1e6, docs.n,
           bytes / 1e6, tokens, s);
    for (size_t d = 0; d < docs.n; d++)
        free(docs.text[d]);
    free(docs.text), free(docs.len);
    tok_ids_free(&ids);
    tok_free(t);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "classes"))
        return mode_classes();
    if (argc >= 7 && !strcmp(argv[1], "compare"))
        return mode_compare(argc, argv);
    if (argc >= 5 && !strcmp(argv[1], "bench"))
        return mode_bench(argc, argv);
    if (argc > 1) {
        fprintf(stderr, "usage: test_tokenizer [classes | compare LABEL ENC VOCAB REF DOC... | bench ENC "
                        "VOCAB DOC...]\n");
        return 2;
    }
    tu_srand(tu_seed("test_tokenizer"));
    check_classes();
    check_splits();
    check_sanitize();
    check_utf8_stream();
    const char *cache = getenv("MESHTRAIN_CACHE");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/gpt2", cache && *cache ? cache : ".cache");
    check_vocab(dir);
    return tu_exit();
}
