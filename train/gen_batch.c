/* bin/generate's prompts: text (optionally in the Alpaca template) to ids, batch files of JSON Lines in, and
 * one JSON object per completion out. Strings are read with the project's JSON parser (base/json_pull.h),
 * which keeps their exact bytes, NUL and invalid UTF-8 included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_pull.h"
#include "data/alpaca.h"
#include "train/generate.h"

void gen_prompt_ids(tok *tk, int alpaca, const mt_bytes *text, const mt_bytes *input, tok_ids *out) {
    out->n = 0;
    if (!alpaca) {
        tok_encode(tk, text->data, text->n, out, NULL);
        return;
    }
    mt_bytes prompt = {0}, none = {0};
    const mt_bytes *in = input ? input : &none;
    alpaca_render(&prompt, in->n ? ALPACA_PROMPT_INPUT : ALPACA_PROMPT_NO_INPUT, text, in);
    tok_encode(tk, prompt.data, prompt.n, out, NULL);
    mt_bytes_free(&prompt);
}

void gen_batch_free(gen_batch *b) {
    for (int i = 0; i < b->n; i++)
        tok_ids_free(&b->prompts[i]);
    free(b->prompts);
    free(b->lines);
    *b = (gen_batch){0};
}

/* A JSON array of integers at the parser's position, appended to ids. */
static int id_array(pj *p, tok_ids *ids) {
    int i = 0, rc;
    if (pj_arr_begin(p))
        return -1;
    while ((rc = pj_arr_next(p, &i)) == 1) {
        int c = pj_peek(p);
        char *end;
        long v = c >= '0' && c <= '9' ? strtol(p->s + p->pos, &end, 10) : -1;
        size_t used = v < 0 ? 0 : (size_t)(end - (p->s + p->pos));
        char next = p->pos + used < p->n ? p->s[p->pos + used] : 0;
        if (!used || next == '.' || next == 'e' || next == 'E' || v > INT32_MAX) {
            snprintf(p->err, sizeof p->err, "prompt_ids must be an array of token ids (integers >= 0)");
            p->err_pos = p->pos;
            return -1;
        }
        p->pos += used;
        int32_t id = (int32_t)v;
        tok_ids_push(ids, &id, 1);
    }
    return rc;
}

/* The fields of one line; which ones were present in *have (bit 0 prompt, 1 instruction, 2 input,
 * 3 prompt_ids). */
typedef struct {
    mt_bytes prompt, instruction, input;
    tok_ids ids;
    int have;
} line_fields;

static int parse_line(pj *p, line_fields *f) {
    mt_bytes key = {0};
    int i = 0, rc;
    f->have = 0;
    f->prompt.n = f->instruction.n = f->input.n = f->ids.n = 0;
    if (pj_obj_begin(p))
        return -1;
    while ((rc = pj_obj_next(p, &i, &key)) == 1) {
        mt_bytes *str = pj_key_is(&key, "prompt")        ? &f->prompt
                        : pj_key_is(&key, "instruction") ? &f->instruction
                        : pj_key_is(&key, "input")       ? &f->input
                                                         : NULL;
        int bit = str == &f->prompt ? 1 : str == &f->instruction ? 2 : str == &f->input ? 4 : 0;
        if (str)
            rc = pj_string(p, str);
        else if (pj_key_is(&key, "prompt_ids"))
            rc = id_array(p, &f->ids), bit = 8;
        else
            rc = pj_skip(p); /* other fields (an id, a reference output) are the caller's */
        if (rc)
            break;
        f->have |= bit;
    }
    mt_bytes_free(&key);
    return rc || pj_end(p) ? -1 : 0;
}

/* The prompt of a parsed line into ids; -1 with err naming where. */
static int line_prompt(const line_fields *f, tok *tk, int alpaca, tok_ids *ids, const char *where,
                       mt_err *err) {
    if (alpaca) {
        const mt_bytes *text = f->have & 2 ? &f->instruction : &f->prompt;
        if (!(f->have & 3))
            return mt_fail(err, "%s: --alpaca needs a string field \"instruction\" (or \"prompt\")", where);
        gen_prompt_ids(tk, 1, text, f->have & 4 ? &f->input : NULL, ids);
        return 0;
    }
    if ((f->have & 9) == 9 || !(f->have & 9))
        return mt_fail(err, "%s: needs exactly one of \"prompt\" (a string) and \"prompt_ids\" (token ids)",
                       where);
    if (f->have & 8)
        tok_ids_push(ids, f->ids.ids, f->ids.n);
    else
        gen_prompt_ids(tk, 0, &f->prompt, NULL, ids);
    return 0;
}

/* One line of the file: its prompt appended to b. */
static int read_line(gen_batch *b, const char *text, size_t n, long line, tok *tk, int alpaca,
                     const model_config *cfg, line_fields *f, const char *path, mt_err *err) {
    char where[4200];
    snprintf(where, sizeof where, "%s:%ld", path, line);
    pj p;
    pj_init(&p, text, n);
    if (parse_line(&p, f))
        return mt_fail(err, "%s: invalid JSON object at byte %zu of the line: %s", where, p.err_pos,
                       p.err[0] ? p.err : "malformed");
    b->prompts = realloc(b->prompts, (size_t)(b->n + 1) * sizeof *b->prompts);
    b->lines = realloc(b->lines, (size_t)(b->n + 1) * sizeof *b->lines);
    CHECK(b->prompts && b->lines, "out of memory");
    tok_ids *ids = &b->prompts[b->n];
    *ids = (tok_ids){0};
    b->lines[b->n++] = line;
    if (line_prompt(f, tk, alpaca, ids, where, err))
        return -1;
    return gen_check_prompt(ids->ids, ids->n, cfg, where, err);
}

int gen_batch_read(const char *path, tok *tk, int alpaca, const model_config *cfg, gen_batch *b,
                   mt_err *err) {
    *b = (gen_batch){0};
    size_t len;
    char *text = mt_read_file(path, &len, err);
    if (!text)
        return -1;
    line_fields f = {0};
    int rc = 0;
    long line = 0;
    for (size_t at = 0; at < len && !rc;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, k = at;
        line++;
        while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r'))
            k++;
        if (k < end) /* blank lines are skipped */
            rc = read_line(b, text + at, end - at, line, tk, alpaca, cfg, &f, path, err);
        at = end + 1;
    }
    if (!rc && !b->n)
        rc = mt_fail(err, "%s: no prompts (one JSON object per line)", path);
    free(text);
    mt_bytes_free(&f.prompt);
    mt_bytes_free(&f.instruction);
    mt_bytes_free(&f.input);
    tok_ids_free(&f.ids);
    if (rc)
        gen_batch_free(b);
    return rc;
}

/* A JSON string of n bytes of valid UTF-8 (escaping quotes, backslashes and control characters). */
static void json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void gen_batch_write(FILE *f, long line, const gen_result *r) {
    fprintf(f,
            "{\"line\": %ld, \"prompt_tokens\": %d, \"new_tokens\": %d, \"finish_reason\": \"%s\", "
            "\"completion\": ",
            line, r->prompt_tokens, r->new_tokens, gen_end_name(r->end));
    json_string(f, r->text.data, r->text.n);
    fputs(", \"completion_ids\": [", f);
    for (size_t i = 0; i < r->ids.n; i++)
        fprintf(f, "%s%d", i ? ", " : "", (int)r->ids.ids[i]);
    fputs("]}\n", f);
}
