/* Fuzz target: bin/prepare's record reader (base/json_pull.c) as its sources use it: JSON Lines records
 * (the document field and meta.pile_set_name, as prepare_jsonl.c reads them), a JSON array of Alpaca records
 * (validated whole, then element by element, as prepare_alpaca.c reads it, with the prompt rendered from the
 * SPEC 6.2 template), and a template file. Properties: a record the reader accepts is accepted again by the
 * validating skip, and the rendered prompt holds the instruction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_pull.h"
#include "data/alpaca.h"
#include "tests/fuzz/input.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 0;
}

static void jsonl(const char *s, size_t n) {
    static const char *const names[2] = {"text", "meta.pile_set_name"};
    for (size_t start = 0; start <= n;) {
        const char *nl = memchr(s + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - s) : n;
        mt_bytes vals[2] = {{0}};
        int state[2] = {0, 0};
        pj p, q;
        pj_init(&p, s + start, end - start);
        if (pj_peek(&p) == '{' && pj_fields(&p, names, 2, vals, state) == 0 && pj_end(&p) == 0) {
            pj_init(&q, s + start, end - start);
            fz_check(pj_skip(&q) == 0 && pj_end(&q) == 0, "a record pj_fields accepts is valid JSON");
            fz_check(state[0] != 1 || vals[0].data || vals[0].n == 0, "a string field has its bytes");
        }
        mt_bytes_free(&vals[0]);
        mt_bytes_free(&vals[1]);
        start = end + 1;
    }
}

static void alpaca_array(const char *s, size_t n) {
    static const char *const fields[3] = {"instruction", "input", "output"};
    pj p;
    pj_init(&p, s, n);
    if (pj_peek(&p) != '[' || pj_skip(&p) || pj_end(&p))
        return;
    pj_init(&p, s, n);
    pj_arr_begin(&p);
    mt_bytes vals[3] = {{0}}, prompt = {0};
    for (int i = 0; pj_arr_next(&p, &i) == 1;) {
        int state[3] = {0, 0, 0};
        if (pj_peek(&p) != '{') {
            fz_check(pj_skip(&p) == 0, "an element of a valid array skips");
            continue;
        }
        fz_check(pj_fields(&p, fields, 3, vals, state) == 0, "an element of a valid array parses");
        if (state[0] == 1 && state[2] == 1) {
            if (state[1] != 1)
                vals[1].n = 0;
            prompt.n = 0;
            alpaca_render(&prompt, vals[1].n ? ALPACA_PROMPT_INPUT : ALPACA_PROMPT_NO_INPUT, &vals[0],
                          &vals[1]);
            fz_check(prompt.n >= vals[0].n + vals[1].n, "the prompt holds the instruction and the input");
        }
    }
    for (int k = 0; k < 3; k++)
        mt_bytes_free(&vals[k]);
    mt_bytes_free(&prompt);
}

static void template_file(const char *s, size_t n) {
    static const char *const keys[2] = {"prompt_input", "prompt_no_input"};
    mt_bytes v[2] = {{0}};
    int state[2] = {0, 0};
    pj p;
    pj_init(&p, s, n);
    if (pj_fields(&p, keys, 2, v, state) == 0)
        pj_end(&p);
    mt_bytes_free(&v[0]);
    mt_bytes_free(&v[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    jsonl(s, size);
    alpaca_array(s, size);
    template_file(s, size);
    return 0;
}
