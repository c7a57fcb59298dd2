/* The UTF-8 stream of generated text (tok_utf8_stream in data/tok.h). */
#include <string.h>

#include "data/tok_internal.h"

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

void tok_utf8_stream_feed(tok_utf8_stream *s, const char *bytes, size_t n, mt_bytes *out) {
    mt_bytes_append(&s->pending, bytes, n);
    const uint8_t *p = (const uint8_t *)s->pending.data;
    size_t len = s->pending.n, i = 0;
    while (i < len) {
        size_t bad, k = tok_utf8_sequence(p + i, len - i, &bad);
        if (k) {
            mt_bytes_append(out, (const char *)p + i, k);
            i += k;
        } else if (i + bad == len && p[i] >= 0xC2 && p[i] <= 0xF4) {
            break; /* a valid start that ran out of bytes: the next token may complete it */
        } else {
            mt_bytes_append(out, REPLACEMENT, sizeof REPLACEMENT);
            i += bad;
        }
    }
    if (i > 0 && i < len)
        memmove(s->pending.data, s->pending.data + i, len - i);
    s->pending.n = len - i;
}

void tok_utf8_stream_finish(tok_utf8_stream *s, mt_bytes *out) {
    if (s->pending.n)
        mt_bytes_append(out, REPLACEMENT, sizeof REPLACEMENT);
    s->pending.n = 0;
}

void tok_utf8_stream_free(tok_utf8_stream *s) { mt_bytes_free(&s->pending); }
