/* prepare's output side: per-source shard sequences (cut at document boundaries), the validation split,
 * tokenization in pieces, bad-record accounting and progress. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/prepare.h"

enum { PIECE_BYTES = 1 << 20, MAX_WARNINGS = 10 };

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int prep_is_val(const char *name, long long index, double fraction, unsigned long long seed) {
    if (fraction <= 0)
        return 0;
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a of the name */
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
    h = mix(mix(h ^ mix(seed)) ^ (uint64_t)index);
    return (double)(h >> 11) / 9007199254740992.0 < fraction;
}

void prep_src_init(prep_src *s, const prep_opts *o, prep_stats *st, const char *name, const char *desc,
                   int with_mask) {
    memset(s, 0, sizeof *s);
    s->o = o;
    s->st = st;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->desc, sizeof s->desc, "%s", desc);
    s->with_mask = with_mask;
}

int prep_doc_begin(prep_src *s, long long index, mt_err *err) {
    s->index = index;
    s->split = prep_is_val(s->name, index, s->o->val_fraction, s->o->seed);
    s->pend.n = 0;
    if (!s->w[s->split]) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/%s-%05d.h5", s->o->out_dir, s->split ? "val" : "train", s->name,
                 s->n_shards[s->split]);
        s->w[s->split] = shard_writer_open(path, "gpt2", s->o->vocab_size, s->o->eot, s->desc, s->with_mask, err);
        if (!s->w[s->split])
            return -1;
    }
    s->doc_start = shard_writer_tokens(s->w[s->split]);
    return 0;
}

static int emit(prep_src *s, const char *text, size_t n, mt_err *err) {
    size_t repl = 0;
    s->ids.n = 0;
    tok_encode(s->o->tk, text, n, &s->ids, &repl);
    s->st->replacements += (long long)repl;
    return shard_writer_append(s->w[s->split], s->ids.ids, NULL, (long)s->ids.n, err);
}

/* A cut at p is safe when text[p-1] is printable ASCII other than space and text[p] is ASCII whitespace:
 * no pre-tokenization piece spans p (whitespace runs cannot include text[p-1], other pieces cannot
 * include text[p] except as their first byte), and the regex looks only forward. */
static size_t safe_cut(const char *t, size_t n) {
    for (size_t p = n - 1; p > 0; p--) {
        char c = t[p], b = t[p - 1];
        if ((c == ' ' || c == '\n' || c == '\r' || c == '\t') && b > 0x20 && b < 0x7f)
            return p;
    }
    return 0;
}

int prep_doc_text(prep_src *s, const char *text, size_t n, mt_err *err) {
    tok_bytes *b = &s->pend;
    if (b->n + n > b->cap) {
        b->cap = b->n + n > 2 * b->cap ? b->n + n : 2 * b->cap;
        b->data = realloc(b->data, b->cap);
        CHECK(b->data, "out of memory");
    }
    memcpy(b->data + b->n, text, n);
    b->n += n;
    if (b->n < PIECE_BYTES)
        return 0;
    size_t cut = safe_cut(b->data, b->n);
    if (cut == 0) /* no safe cut yet: keep accumulating */
        return 0;
    if (emit(s, b->data, cut, err))
        return -1;
    memmove(b->data, b->data + cut, b->n - cut);
    b->n -= cut;
    return 0;
}

int prep_doc_tokens(prep_src *s, const int32_t *ids, const uint8_t *mask, long n, mt_err *err) {
    return shard_writer_append(s->w[s->split], ids, mask, n, err);
}

int prep_doc_end(prep_src *s, int add_eot, const char *source_name, mt_err *err) {
    shard_writer *w = s->w[s->split];
    if (s->pend.n && emit(s, s->pend.data, s->pend.n, err))
        return -1;
    s->pend.n = 0;
    int32_t eot = s->o->eot;
    uint8_t one = 1;
    if (add_eot && shard_writer_append(w, &eot, &one, 1, err))
        return -1;
    shard_writer_end_doc(w, source_name);
    s->st->docs++;
    s->st->val_docs += s->split;
    s->st->tokens += shard_writer_tokens(w) - s->doc_start; /* emitted pieces, response tokens, EOT */
    if (shard_writer_tokens(w) >= s->o->shard_tokens) {
        s->w[s->split] = NULL;
        s->n_shards[s->split]++;
        (s->split ? &s->st->val_shards : &s->st->train_shards)[0]++;
        if (shard_writer_close(w, err))
            return -1;
    }
    return 0;
}

int prep_src_close(prep_src *s, mt_err *err) {
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        if (!s->w[k])
            continue;
        shard_writer *w = s->w[k];
        s->w[k] = NULL;
        if (rc) {
            shard_writer_abort(w);
            continue;
        }
        rc = shard_writer_close(w, err);
        if (!rc)
            (k ? &s->st->val_shards : &s->st->train_shards)[0]++;
    }
    tok_bytes_free(&s->pend);
    tok_ids_free(&s->ids);
    return rc;
}

void prep_src_abort(prep_src *s) {
    for (int k = 0; k < 2; k++)
        if (s->w[k])
            shard_writer_abort(s->w[k]);
    s->w[0] = s->w[1] = NULL;
    tok_bytes_free(&s->pend);
    tok_ids_free(&s->ids);
}

int prep_bad(prep_src *s, int why, mt_err *err, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->st->skipped[why]++;
    if (why == SKIP_EMPTY_DOC)
        return 0;
    if (s->o->strict)
        return mt_fail(err, "%s (--strict)", msg);
    if (s->warnings < MAX_WARNINGS)
        fprintf(stderr, "prepare: warning: %s; skipped\n", msg);
    else if (s->warnings == MAX_WARNINGS)
        fprintf(stderr, "prepare: warning: %s: further warnings for this source not shown\n", s->name);
    s->warnings++;
    return 0;
}

int prep_rank;
long long prep_total_bytes;

static void clock_str(char *buf, size_t n, double sec) {
    long s = sec < 0 ? 0 : (long)(sec + 0.5);
    snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

void prep_progress(const prep_stats *st, long long bytes_done, int final) {
    static double start, last;
    static int tty = -1;
    double now = mt_now();
    if (tty < 0) {
        tty = isatty(2);
        start = last = now;
    }
    if (prep_rank != 0 || (!final && now - last < (tty ? 0.25 : 5.0)))
        return;
    last = now;
    double el = now - start, frac = prep_total_bytes > 0 ? (double)bytes_done / (double)prep_total_bytes : 1;
    char eta[32];
    clock_str(eta, sizeof eta, frac > 0 ? el * (1 - frac) / frac : 0);
    char line[256];
    snprintf(line, sizeof line, "%.1f/%.1f MB (%.0f%%), %lld docs, %lld tokens, %.0f tok/s, ETA %s",
             (double)bytes_done / 1e6, (double)prep_total_bytes / 1e6, 100 * frac, st->docs, st->tokens,
             el > 0 ? (double)st->tokens / el : 0.0, eta);
    if (tty) {
        int filled = (int)(frac * 30 + 0.5);
        fprintf(stderr, "\r[%.*s%*s] %s\033[K%s", filled, "==============================", 30 - filled, "",
                line, final ? "\n" : "");
    } else if (!final) {
        fprintf(stderr, "prepare: rank 0: %s\n", line);
    }
}
