/* prepare text: .txt files (one document each, bytes as they are) and JSON arrays of strings (one
 * document per string). */
#include <stdlib.h>
#include <string.h>

#include "base/json_pull.h"
#include "data/prepare.h"
#include "data/prepare_input.h"

enum { READ_BYTES = 1 << 20 };

int prepare_text_files(prep_src *s, char **paths, int n, mt_err *err) {
    char *buf = mt_malloc(READ_BYTES);
    long long base = s->st->bytes;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        pin in;
        if ((rc = pin_open(&in, paths[i], err)))
            break;
        long got = pin_read(&in, buf, READ_BYTES, err);
        if (got == 0)
            rc = prep_bad(s, SKIP_EMPTY_DOC, err, "%s: empty document", paths[i]);
        else if (got > 0)
            rc = prep_doc_begin(s, i, err);
        while (got > 0 && !rc) {
            rc = prep_doc_text(s, buf, (size_t)got, err);
            s->st->bytes = base + in.consumed;
            prep_progress(s->st, s->st->bytes, 0);
            got = rc ? 0 : pin_read(&in, buf, READ_BYTES, err);
        }
        if (got < 0)
            rc = -1;
        else if (!rc && in.consumed > 0)
            rc = prep_doc_end(s, 1, NULL, err);
        base += in.size;
        s->st->bytes = base;
        prep_input_done(s->st, &in);
        pin_close(&in);
    }
    free(buf);
    return rc;
}

int prepare_text_json(prep_src *s, const char *path, mt_err *err) {
    size_t len;
    char *text = mt_read_file(path, &len, err);
    if (!text)
        return -1;
    long long base = s->st->bytes;
    pj p;
    pj_init(&p, text, len);
    int rc = 0;
    if (pj_peek(&p) < 0) {
        rc = prep_bad(s, SKIP_EMPTY_IN, err, "%s: empty input", path);
    } else if (pj_peek(&p) != '[' || pj_skip(&p) || pj_end(&p)) { /* validate the whole file first */
        if (!p.err[0])
            snprintf(p.err, sizeof p.err, "expected a JSON array of strings"), p.err_pos = 0;
        rc = mt_fail(err, "%s: invalid JSON at byte %zu (line %ld): %s", path, p.err_pos,
                     pj_line_of(text, p.err_pos), p.err);
    } else {
        pj_init(&p, text, len);
        pj_arr_begin(&p);
        int i = 0;
        long long index = 0;
        mt_bytes str = {0};
        while (!rc && pj_arr_next(&p, &i) == 1) {
            size_t at = p.pos;
            if (pj_peek(&p) != '"') {
                pj_skip(&p);
                rc = prep_bad(s, SKIP_FIELD, err, "%s:%ld: element %lld is not a string", path,
                              pj_line_of(text, at), index);
            } else {
                str.n = 0;
                pj_string(&p, &str);
                s->st->replacements += (long long)p.surrogates;
                p.surrogates = 0;
                if (str.n == 0)
                    rc = prep_bad(s, SKIP_EMPTY_DOC, err, "empty");
                else if (!(rc = prep_doc_begin(s, index, err)) &&
                         !(rc = prep_doc_text(s, str.data, str.n, err)))
                    rc = prep_doc_end(s, 1, NULL, err);
            }
            index++;
            prep_progress(s->st, base + (long long)p.pos, 0);
        }
        mt_bytes_free(&str);
    }
    s->st->bytes = base + (long long)len;
    free(text);
    return rc;
}
