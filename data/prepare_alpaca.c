/* prepare alpaca: instruction/input/output records (a JSON array, or JSON Lines) rendered with the
 * Alpaca templates (SPEC 6.2); prompt and response are tokenized separately, the example is
 * tokens(prompt) + tokens(output) + EOT, and /loss_mask is 1 on the response tokens and the EOT.
 * With --max-tokens N, a longer example keeps its whole prompt and the first N - len(prompt) response
 * tokens (no EOT then, as truncation in Alpaca's train.py drops the eos); an example whose prompt alone
 * has N tokens or more is dropped and counted. */
#include <stdlib.h>
#include <string.h>

#include "base/json_pull.h"
#include "data/alpaca.h"
#include "data/prepare.h"
#include "data/prepare_input.h"

typedef struct {
    mt_bytes vals[3], prompt;
    tok_ids ids;
    uint8_t *mask;
    size_t mask_cap;
} alpaca_buf;

/* One parsed record (state as pj_fields gives it): 0, or the prep_bad/prep_doc result. */
static int example(prep_src *s, alpaca_buf *b, const int *state, const char *where, long long index,
                   mt_err *err) {
    static const char *const req[3] = {"instruction", "input", "output"};
    for (int k = 0; k < 3; k++)
        if (state[k] != 1 && (k != 1 || state[k] == 2))
            return prep_bad(s, SKIP_FIELD, err, "%s: field \"%s\" %s", where, req[k],
                            state[k] == 0   ? "is missing"
                            : state[k] == 3 ? "is null"
                                            : "is not a string");
    if (state[1] != 1)
        b->vals[1].n = 0; /* a missing or null input is an empty input */
    const prep_opts *o = s->o;
    alpaca_render(&b->prompt, b->vals[1].n ? o->tmpl_input : o->tmpl_no_input, &b->vals[0], &b->vals[1]);
    size_t repl = 0;
    b->ids.n = 0;
    tok_encode(o->tk, b->prompt.data, b->prompt.n, &b->ids, &repl);
    long np = (long)b->ids.n;
    tok_encode(o->tk, b->vals[2].data, b->vals[2].n, &b->ids, &repl);
    s->st->replacements += (long long)repl;
    long n = (long)b->ids.n, keep = n + 1;
    int eot = 1;
    if (o->max_tokens > 0 && keep > o->max_tokens) {
        if (np >= o->max_tokens)
            return prep_bad(s, SKIP_TOO_LONG, err, "%s: prompt of %ld tokens", where, np);
        keep = o->max_tokens;
        eot = 0;
        s->st->truncated++;
    }
    long body = eot ? n : keep;
    if ((size_t)body > b->mask_cap) {
        b->mask_cap = (size_t)body * 2;
        b->mask = realloc(b->mask, b->mask_cap);
        CHECK(b->mask, "out of memory");
    }
    memset(b->mask, 0, (size_t)np);
    memset(b->mask + np, 1, (size_t)(body - np));
    if (prep_doc_begin(s, index, err) || prep_doc_tokens(s, b->ids.ids, b->mask, body, err))
        return -1;
    return prep_doc_end(s, eot, NULL, err);
}

static const char *const FIELDS[3] = {"instruction", "input", "output"};

static int from_array(prep_src *s, alpaca_buf *b, const char *path, const char *text, size_t len,
                      mt_err *err) {
    pj p;
    pj_init(&p, text, len);
    if (pj_peek(&p) != '[' || pj_skip(&p) || pj_end(&p)) { /* validate the whole file first */
        if (!p.err[0])
            snprintf(p.err, sizeof p.err, "expected a JSON array of objects"), p.err_pos = 0;
        return mt_fail(err, "%s: invalid JSON at byte %zu (line %ld): %s", path, p.err_pos,
                       pj_line_of(text, p.err_pos), p.err);
    }
    pj_init(&p, text, len);
    pj_arr_begin(&p);
    int i = 0, rc = 0;
    long long index = 0, base = s->st->bytes;
    while (!rc && pj_arr_next(&p, &i) == 1) {
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld: element %lld", path, pj_line_of(text, p.pos), index);
        int state[3] = {0, 0, 0};
        if (pj_peek(&p) != '{') {
            pj_skip(&p);
            rc = prep_bad(s, SKIP_JSON, err, "%s is not an object", where);
        } else {
            pj_fields(&p, FIELDS, 3, b->vals, state);
            s->st->replacements += (long long)p.surrogates;
            p.surrogates = 0;
            rc = example(s, b, state, where, index, err);
        }
        index++;
        prep_progress(s->st, base + (long long)p.pos, 0);
    }
    return rc;
}

static int from_lines(prep_src *s, alpaca_buf *b, const char *path, mt_err *err) {
    pin in;
    if (pin_open(&in, path, err))
        return -1;
    long long base = s->st->bytes, records = 0;
    char *line;
    size_t len;
    int rc = 0, got = 0;
    while (!rc && (got = pin_line(&in, &line, &len, err)) == 1) {
        pj p;
        pj_init(&p, line, len);
        if (pj_peek(&p) < 0) {
            s->st->blank_lines++;
            continue;
        }
        records++;
        int state[3] = {0, 0, 0};
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", path, in.line);
        if (pj_peek(&p) != '{')
            rc = prep_bad(s, SKIP_JSON, err, "%s: not a JSON object", where);
        else if (pj_fields(&p, FIELDS, 3, b->vals, state) || pj_end(&p))
            rc = prep_bad(s, SKIP_JSON, err, "%s: invalid JSON at byte %zu of the line: %s", where, p.err_pos,
                          p.err);
        else {
            s->st->replacements += (long long)p.surrogates;
            rc = example(s, b, state, where, in.line - 1, err);
        }
        prep_progress(s->st, base + in.consumed, 0);
    }
    if (!rc && got < 0)
        rc = prep_bad(s, SKIP_STREAM, err, "%s", err->msg);
    else if (!rc && records == 0)
        rc = prep_bad(s, SKIP_EMPTY_IN, err, "%s: empty input", path);
    s->st->bytes = base + in.size;
    prep_input_done(s->st, &in);
    pin_close(&in);
    return rc;
}

/* A template file: {"prompt_input": "...", "prompt_no_input": "..."} with {instruction} and {input}. */
static int load_template(const char *path, mt_bytes v[2], mt_err *err) {
    size_t len;
    char *text = mt_read_file(path, &len, err);
    if (!text)
        return -1;
    static const char *const keys[2] = {"prompt_input", "prompt_no_input"};
    int state[2] = {0, 0}, rc = 0;
    pj p;
    pj_init(&p, text, len);
    if (pj_fields(&p, keys, 2, v, state) || pj_end(&p))
        rc = mt_fail(err, "%s: invalid JSON at byte %zu: %s", path, p.err_pos, p.err);
    for (int k = 0; k < 2 && !rc; k++) {
        if (state[k] != 1)
            rc = mt_fail(err, "%s: %s: missing (a string is required)", path, keys[k]);
        else {
            v[k].data = realloc(v[k].data, v[k].n + 1);
            v[k].data[v[k].n] = 0;
            if (strlen(v[k].data) != v[k].n || !strstr(v[k].data, "{instruction}") ||
                (k == 0 && !strstr(v[k].data, "{input}")))
                rc = mt_fail(err, "%s: %s: must contain {instruction}%s", path, keys[k],
                             k ? "" : " and {input}");
        }
    }
    free(text);
    return rc;
}

int prep_alpaca_templates(prep_opts *o, const char *path, mt_bytes v[2], mt_err *err) {
    if (!path) {
        o->tmpl_input = ALPACA_PROMPT_INPUT;
        o->tmpl_no_input = ALPACA_PROMPT_NO_INPUT;
        return 0;
    }
    int rc = load_template(path, v, err);
    o->tmpl_input = v[0].data;
    o->tmpl_no_input = v[1].data;
    return rc;
}

int prepare_alpaca(prep_src *s, const char *path, mt_err *err) {
    alpaca_buf b = {0};
    int rc;
    long long base = s->st->bytes;
    if (pin_ends_with(path, ".json")) {
        size_t len;
        char *text = mt_read_file(path, &len, err);
        if (!text)
            return -1;
        pj p;
        pj_init(&p, text, len);
        rc = pj_peek(&p) < 0 ? prep_bad(s, SKIP_EMPTY_IN, err, "%s: empty input", path)
                             : from_array(s, &b, path, text, len, err);
        s->st->bytes = base + (long long)len;
        free(text);
    } else {
        rc = from_lines(s, &b, path, err);
    }
    for (int k = 0; k < 3; k++)
        mt_bytes_free(&b.vals[k]);
    mt_bytes_free(&b.prompt);
    tok_ids_free(&b.ids);
    free(b.mask);
    return rc;
}
