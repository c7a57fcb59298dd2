/* prepare jsonl / pile: JSON Lines (plain or .zst), one document per line from a string field; the
 * Pile's meta.pile_set_name is kept as the document's source (/doc_source). */
#include <stdlib.h>
#include <string.h>

#include "base/json_pull.h"
#include "data/prepare.h"
#include "data/prepare_input.h"

int prepare_jsonl(prep_src *s, const char *path, mt_err *err) {
    pin in;
    if (pin_open(&in, path, err))
        return -1;
    long long base = s->st->bytes, records = 0;
    const char *names[2] = {s->o->field, "meta.pile_set_name"};
    mt_bytes vals[2] = {{0}};
    char *line, set[256];
    size_t len;
    int rc = 0, got = 0;
    while (!rc && (got = pin_line(&in, &line, &len, err)) == 1) {
        pj p;
        pj_init(&p, line, len);
        if (pj_peek(&p) < 0) { /* whitespace only (or a byte order mark) */
            s->st->blank_lines++;
            continue;
        }
        records++;
        int state[2] = {0, 0};
        if (pj_peek(&p) != '{') {
            rc = prep_bad(s, SKIP_JSON, err, "%s:%ld: not a JSON object", path, in.line);
        } else if (pj_fields(&p, names, 2, vals, state) || pj_end(&p)) {
            rc = prep_bad(s, SKIP_JSON, err, "%s:%ld: invalid JSON at byte %zu of the line: %s", path,
                          in.line, p.err_pos, p.err);
        } else if (state[0] != 1) {
            rc = prep_bad(s, SKIP_FIELD, err, "%s:%ld: field \"%s\" %s", path, in.line, s->o->field,
                          state[0] ? "is not a string" : "is missing");
        } else if (vals[0].n == 0) {
            rc = prep_bad(s, SKIP_EMPTY_DOC, err, "empty");
        } else {
            s->st->replacements += (long long)p.surrogates;
            const char *src = NULL;
            if (state[1] == 1) {
                size_t n = vals[1].n < sizeof set - 1 ? vals[1].n : sizeof set - 1;
                for (size_t i = 0; i < n; i++) /* the names are joined by '\n' in doc_source_names */
                    set[i] = (unsigned char)vals[1].data[i] < 0x20 ? ' ' : vals[1].data[i];
                set[n] = 0;
                src = set;
            }
            if (!(rc = prep_doc_begin(s, in.line - 1, err)) &&
                !(rc = prep_doc_text(s, vals[0].data, vals[0].n, err)))
                rc = prep_doc_end(s, 1, src, err);
        }
        prep_progress(s->st, base + in.consumed, 0);
    }
    if (!rc && got < 0) /* read error, corrupt or truncated .zst: the records read so far are kept */
        rc = prep_bad(s, SKIP_STREAM, err, "%s", err->msg);
    else if (!rc && records == 0)
        rc = prep_bad(s, SKIP_EMPTY_IN, err, "%s: empty input", path);
    s->st->bytes = base + in.size;
    prep_input_done(s->st, &in);
    pin_close(&in);
    mt_bytes_free(&vals[0]);
    mt_bytes_free(&vals[1]);
    return rc;
}
