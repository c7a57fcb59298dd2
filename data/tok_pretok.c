/* UTF-8 decoding with U+FFFD replacement and GPT-2's pre-tokenization regex (SPEC 7.3), hand-written:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * over code point classes generated from the Python `regex` module (data/tok_unicode.c). */
#include <stdlib.h>
#include <string.h>

#include "data/tok_internal.h"

/* ASCII classes, written out (the unit test checks them against the generated ranges): letters, digits,
 * and \t \n \v \f \r space as \s (not U+001C-U+001F, which Python's built-in `re` would take). */
#define L TOK_LETTER
#define N TOK_NUMBER
#define S TOK_SPACE
static const uint8_t ascii_class[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, S, S, S, S, S, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    S, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, N, N, N, N, N, N, N, N, N, N, 0, 0, 0, 0, 0, 0,
    0, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, 0, 0, 0, 0, 0,
    0, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, 0, 0, 0, 0, 0,
};
#undef L
#undef N
#undef S

static int class_search(uint32_t cp) {
    size_t lo = 0, hi = tok_class_range_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < tok_class_ranges[mid].first)
            hi = mid;
        else if (cp > tok_class_ranges[mid].last)
            lo = mid + 1;
        else
            return tok_class_ranges[mid].cls;
    }
    return TOK_OTHER;
}

int tok_class_of(uint32_t cp) { return cp < 128 ? ascii_class[cp] : class_search(cp); }

size_t tok_utf8_sequence(const uint8_t *s, size_t avail, size_t *bad) {
    uint8_t b = s[0];
    if (b < 0x80)
        return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        need = 1;
    else if (b == 0xE0)
        need = 2, lo = 0xA0;
    else if (b == 0xED)
        need = 2, hi = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF)
        need = 2;
    else if (b == 0xF0)
        need = 3, lo = 0x90;
    else if (b == 0xF4)
        need = 3, hi = 0x8F;
    else if (b >= 0xF1 && b <= 0xF3)
        need = 3;
    else {
        *bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= avail || s[k] < lo || s[k] > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80, hi = 0xBF;
    }
    return need + 1;
}

static size_t first_invalid(const uint8_t *s, size_t len) {
    size_t i = 0, bad;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = tok_utf8_sequence(s + i, len - i, &bad);
        if (!n)
            return i;
        i += n;
    }
    return len;
}

char *tok_utf8_sanitize(const char *text, size_t len, size_t *out_len, size_t *replacements) {
    const uint8_t *s = (const uint8_t *)text;
    size_t i = first_invalid(s, len);
    if (i == len)
        return NULL;
    /* Each replacement (3 bytes) covers at least one input byte. */
    uint8_t *out = mt_malloc(3 * len + 1);
    memcpy(out, s, i);
    size_t o = i, count = 0, bad;
    while (i < len) {
        size_t n = tok_utf8_sequence(s + i, len - i, &bad);
        if (n) {
            memcpy(out + o, s + i, n);
            o += n, i += n;
        } else {
            out[o++] = 0xEF, out[o++] = 0xBF, out[o++] = 0xBD;
            i += bad, count++;
        }
    }
    if (replacements)
        *replacements += count;
    *out_len = o;
    return (char *)out;
}

/* Decodes the (valid) code point at s; returns its byte length. */
static inline size_t next_cp(const uint8_t *s, uint32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80)
        return *cp = b, 1;
    if (b < 0xE0)
        return *cp = (uint32_t)(b & 0x1F) << 6 | (s[1] & 0x3F), 2;
    if (b < 0xF0)
        return *cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F), 3;
    *cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 |
          (s[3] & 0x3F);
    return 4;
}

static inline int class_at(const uint8_t *s, size_t *n) {
    if (s[0] < 0x80) {
        *n = 1;
        return tok_class_of(s[0]);
    }
    uint32_t cp;
    *n = next_cp(s, &cp);
    return tok_class_of(cp);
}

/* Length of a contraction ('s 't 're 've 'm 'll 'd, lowercase only) at s[0] == '\'', or 0. */
static size_t contraction(const uint8_t *s, size_t avail) {
    if (avail < 2)
        return 0;
    uint8_t a = s[1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (avail < 3)
        return 0;
    uint8_t b = s[2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

void tok_pretokenize(const uint8_t *s, size_t len, tok_piece_fn piece, void *ctx) {
    size_t i = 0;
    while (i < len) {
        if (s[i] == '\'') {
            size_t n = contraction(s + i, len - i);
            if (n) {
                piece(ctx, s + i, n);
                i += n;
                continue;
            }
        }
        size_t n, j = i;
        int cls = class_at(s + i, &n);
        if (s[i] == ' ' && i + 1 < len) {
            /* " ?X+": an ordinary space prefixes a run of letters, numbers or other symbols. */
            size_t n2;
            int next = class_at(s + i + 1, &n2);
            if (next != TOK_SPACE)
                cls = next, j = i + 1, n = n2;
        }
        if (cls != TOK_SPACE) {
            j += n;
            while (j < len) {
                size_t m;
                if (class_at(s + j, &m) != cls)
                    break;
                j += m;
            }
            piece(ctx, s + i, j - i);
            i = j;
            continue;
        }
        /* \s+(?!\S) leaves a run's last whitespace character to the next piece when a non-space follows;
         * a run of one such character is matched by the final \s+. */
        size_t last = i;
        j = i;
        while (j < len) {
            size_t m;
            if (class_at(s + j, &m) != TOK_SPACE)
                break;
            last = j;
            j += m;
        }
        if (j < len && last > i)
            j = last;
        piece(ctx, s + i, j - i);
        i = j;
    }
}
