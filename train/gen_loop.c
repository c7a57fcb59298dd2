/* The decoding loop of one completion and the text of its tokens: bytes of each new token -> stop-string
 * matcher (holds back bytes that may begin a stop string) -> UTF-8 stream (holds a split character) -> emit.
 * Stop strings are matched on the raw bytes of the tokens, so the text is exactly the decoding of the bytes
 * before the first occurrence. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/generate.h"

struct generator {
    model *m;
    const tok *tk;
    sampler *s;
    int n_draw;    /* this rank's logit columns that can be drawn */
    float *logits; /* [n_draw] host copy */
    mt_bytes raw;  /* one token's bytes */
    mt_bytes held; /* bytes that may begin a stop string */
    mt_bytes out;  /* text decided by the last call of the text pipeline */
    tok_utf8_stream utf8;
};

const char *gen_end_name(gen_end e) {
    static const char *const NAMES[] = {"eot", "stop", "length", "context"};
    return NAMES[e];
}

void gen_result_free(gen_result *r) {
    tok_ids_free(&r->ids);
    mt_bytes_free(&r->text);
}

generator *gen_create(model *m, const tok *tk, comm_ctx *comm) {
    generator *g = mt_calloc(1, sizeof *g);
    g->m = m;
    g->tk = tk;
    const param_info *h = &m->table.p[m->table.head_w];
    long limit = m->cfg.loss_vocab < tok_vocab_size(tk) ? m->cfg.loss_vocab : tok_vocab_size(tk);
    long n = limit - h->row_start;
    g->n_draw = (int)(n < 0 ? 0 : n > h->valid_rows ? h->valid_rows : n);
    g->logits = mt_malloc(((size_t)g->n_draw + 1) * sizeof *g->logits);
    g->s = sampler_create(g->n_draw, (int)h->row_start, comm);
    return g;
}

void gen_free(generator *g) {
    if (!g)
        return;
    sampler_free(g->s);
    free(g->logits);
    mt_bytes_free(&g->raw);
    mt_bytes_free(&g->held);
    mt_bytes_free(&g->out);
    tok_utf8_stream_free(&g->utf8);
    free(g);
}

int gen_check_prompt(const int32_t *ids, size_t n, const model_config *cfg, const char *what, mt_err *err) {
    if (n == 0)
        return mt_fail(err, "%s: the prompt is empty", what);
    if (n >= (size_t)cfg->n_ctx)
        return mt_fail(
            err,
            "%s: the prompt has %zu tokens; the model's context (n_ctx) is %d, which must leave room for "
            "a new token (long prompts are refused, not truncated)",
            what, n, cfg->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
            return mt_fail(err, "%s: prompt token %zu is id %d, outside the model's vocabulary of %d", what,
                           i, (int)ids[i], cfg->vocab_size);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- text */

/* Earliest occurrence of any stop string in the held bytes, or -1. */
static long find_stop(const generator *g, const gen_options *o) {
    long first = -1;
    for (int k = 0; k < o->n_stop; k++) {
        const char *at = memmem(g->held.data, g->held.n, o->stop[k], strlen(o->stop[k]));
        if (at && (first < 0 || at - g->held.data < first))
            first = at - g->held.data;
    }
    return first;
}

/* Length of the longest end of the held bytes that begins some stop string (and so must wait). */
static size_t stop_prefix(const generator *g, const gen_options *o) {
    size_t keep = 0;
    for (int k = 0; k < o->n_stop; k++) {
        size_t len = strlen(o->stop[k]);
        for (size_t j = len - 1 < g->held.n ? len - 1 : g->held.n; j > keep; j--)
            if (!memcmp(g->held.data + g->held.n - j, o->stop[k], j)) {
                keep = j;
                break;
            }
    }
    return keep;
}

/* The first n held bytes go through the UTF-8 stream (finished at the end) to r and emit. */
static void release(generator *g, size_t n, int finish, gen_result *r, gen_emit_fn emit, void *ctx) {
    g->out.n = 0;
    tok_utf8_stream_feed(&g->utf8, g->held.data, n, &g->out);
    if (finish)
        tok_utf8_stream_finish(&g->utf8, &g->out);
    if (n && n < g->held.n)
        memmove(g->held.data, g->held.data + n, g->held.n - n);
    g->held.n -= n;
    mt_bytes_append(&r->text, g->out.data, g->out.n);
    if (emit && g->out.n)
        emit(ctx, g->out.data, g->out.n);
}

/* Adds a new token's bytes; 1 when a stop string has appeared (the text then ends before it). */
static int add_text(generator *g, int32_t id, const gen_options *o, gen_result *r, gen_emit_fn emit,
                    void *ctx) {
    g->raw.n = 0;
    mt_err err;
    CHECK(tok_decode(g->tk, &id, 1, &g->raw, &err) == 0, "%s", err.msg); /* drawn ids are in the vocabulary */
    mt_bytes_append(&g->held, g->raw.data, g->raw.n);
    long stop = find_stop(g, o);
    if (stop >= 0) {
        release(g, (size_t)stop, 1, r, emit, ctx);
        return 1;
    }
    release(g, g->held.n - stop_prefix(g, o), 0, r, emit, ctx);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- loop */

static int32_t next_token(generator *g, const gen_options *o) {
    model_get_last_logits(g->m, g->logits, g->n_draw);
    return sampler_next(g->s, &o->sample, g->logits);
}

/* Why the completion ends after the token just taken, or -1 to go on. */
static int end_after(generator *g, const gen_options *o, const gen_result *r) {
    if (r->new_tokens >= o->max_new)
        return GEN_LENGTH;
    if (model_next_position(g->m) >= g->m->T_max)
        return GEN_CONTEXT;
    return -1;
}

int gen_run(generator *g, const int32_t *prompt, int n, const gen_options *o, gen_emit_fn emit, void *ctx,
            gen_result *r, mt_err *err) {
    r->prompt_tokens = n;
    r->new_tokens = r->steps = 0;
    r->ids.n = r->text.n = 0;
    g->held.n = 0;
    sampler_seed(g->s, o->seed);
    double t0 = mt_now(), t1 = t0;
    model_prefill(g->m, prompt, n);
    int32_t id = next_token(g, o);
    r->prompt_ms = 1e3 * (mt_now() - t0);
    int end = -1;
    while (end < 0) {
        if (id < 0) {
            release(g, g->held.n, 1, r, emit, ctx);
            return mt_fail(err, "the model produced non-finite logits at position %d",
                           model_next_position(g->m));
        }
        if (id == g->m->cfg.eot_token) {
            end = GEN_EOT;
            break;
        }
        tok_ids_push(&r->ids, &id, 1);
        r->new_tokens++;
        if (add_text(g, id, o, r, emit, ctx))
            end = GEN_STOP;
        else if ((end = end_after(g, o, r)) < 0) {
            if (!r->steps)
                t1 = mt_now();
            model_decode(g->m, &id);
            id = next_token(g, o);
            r->steps++;
        }
    }
    if (end != GEN_STOP)
        release(g, g->held.n, 1, r, emit, ctx);
    r->end = (gen_end)end;
    r->decode_ms = r->steps ? 1e3 * (mt_now() - t1) : 0;
    return 0;
}
