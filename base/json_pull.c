#include "base/json_pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

enum { PJ_MAX_DEPTH = 512 };

void pj_init(pj *p, const char *s, size_t n) {
    memset(p, 0, sizeof *p);
    p->s = s;
    p->n = n;
    if (n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) /* a byte order mark (RFC 8259 8.1: may be ignored) */
        p->pos = 3;
}

static int fail(pj *p, const char *what) {
    if (!p->err[0]) {
        snprintf(p->err, sizeof p->err, "%s", what);
        p->err_pos = p->pos;
    }
    return -1;
}

int pj_peek(pj *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return (unsigned char)c;
        p->pos++;
    }
    return -1;
}

static void put_utf8(mt_bytes *b, unsigned cp) {
    char u[4];
    size_t n;
    if (cp < 0x80)
        u[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 63)), u[2] = (char)(0x80 | (cp & 63)),
        n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 63)),
        u[2] = (char)(0x80 | (cp >> 6 & 63)), u[3] = (char)(0x80 | (cp & 63)), n = 4;
    mt_bytes_append(b, u, n);
}

static int hex4(pj *p, size_t at, unsigned *out) {
    if (at + 4 > p->n)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[at + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

int pj_string(pj *p, mt_bytes *out) {
    if (pj_peek(p) != '"')
        return fail(p, "expected a string");
    p->pos++;
    for (;;) {
        size_t start = p->pos;
        while (p->pos < p->n && p->s[p->pos] != '"' && p->s[p->pos] != '\\' &&
               (unsigned char)p->s[p->pos] >= 0x20)
            p->pos++;
        mt_bytes_append(out, p->s + start, p->pos - start);
        if (p->pos >= p->n)
            return fail(p, "unterminated string");
        char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return 0;
        }
        if (c != '\\')
            return fail(p, "control character in string");
        if (p->pos + 1 >= p->n)
            return fail(p, "unterminated string");
        char e = p->s[p->pos + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            mt_bytes_append(out, &map[simple - "\"\\/bfnrt"], 1);
            p->pos += 2;
            continue;
        }
        if (e != 'u')
            return fail(p, "invalid escape in string");
        unsigned cp, lo;
        if (hex4(p, p->pos + 2, &cp))
            return fail(p, "invalid \\u escape in string");
        p->pos += 6;
        if (cp >= 0xD800 && cp < 0xDC00 && p->pos + 1 < p->n && p->s[p->pos] == '\\' &&
            p->s[p->pos + 1] == 'u' && !hex4(p, p->pos + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p->pos += 6;
        } else if (cp >= 0xD800 && cp < 0xE000) {
            cp = 0xFFFD;
            p->surrogates++;
        }
        put_utf8(out, cp);
    }
}

static int literal(pj *p, const char *word) {
    size_t n = strlen(word);
    if (p->pos + n > p->n || memcmp(p->s + p->pos, word, n))
        return fail(p, "invalid value");
    p->pos += n;
    return 0;
}

static int digits(pj *p) {
    size_t start = p->pos;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    return p->pos > start ? 0 : fail(p, "invalid number");
}

static int number(pj *p) {
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos < p->n && p->s[p->pos] == '0')
        p->pos++;
    else if (digits(p))
        return -1;
    if (p->pos < p->n && p->s[p->pos] == '.') {
        p->pos++;
        if (digits(p))
            return -1;
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (digits(p))
            return -1;
    }
    return 0;
}

int pj_skip(pj *p) {
    int c = pj_peek(p), i = 0, rc;
    mt_bytes scratch = {0};
    switch (c) {
    case '"':
        rc = pj_string(p, &scratch);
        mt_bytes_free(&scratch);
        return rc;
    case '{':
        if (pj_obj_begin(p))
            return -1;
        while ((rc = pj_obj_next(p, &i, &scratch)) == 1)
            if (pj_skip(p))
                break;
        mt_bytes_free(&scratch);
        return rc == 0 ? 0 : -1;
    case '[':
        if (pj_arr_begin(p))
            return -1;
        while ((rc = pj_arr_next(p, &i)) == 1)
            if (pj_skip(p))
                return -1;
        return rc;
    case 't':
        return literal(p, "true");
    case 'f':
        return literal(p, "false");
    case 'n':
        return literal(p, "null");
    case -1:
        return fail(p, "unexpected end of input");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return number(p);
        return fail(p, "invalid value");
    }
}

static int open_bracket(pj *p, char c) {
    if (pj_peek(p) != c)
        return fail(p, c == '{' ? "expected an object" : "expected an array");
    if (++p->depth > PJ_MAX_DEPTH)
        return fail(p, "nesting too deep");
    p->pos++;
    return 0;
}

int pj_obj_begin(pj *p) { return open_bracket(p, '{'); }
int pj_arr_begin(pj *p) { return open_bracket(p, '['); }

int pj_obj_next(pj *p, int *i, mt_bytes *key) {
    int c = pj_peek(p);
    if (c == '}') {
        p->pos++;
        p->depth--;
        return 0;
    }
    if (*i > 0) {
        if (c != ',')
            return fail(p, "expected ',' or '}'");
        p->pos++;
    }
    key->n = 0;
    if (pj_string(p, key))
        return -1;
    if (pj_peek(p) != ':')
        return fail(p, "expected ':'");
    p->pos++;
    (*i)++;
    return 1;
}

int pj_arr_next(pj *p, int *i) {
    int c = pj_peek(p);
    if (c == ']') {
        p->pos++;
        p->depth--;
        return 0;
    }
    if (*i > 0) {
        if (c != ',')
            return fail(p, "expected ',' or ']'");
        p->pos++;
        if (pj_peek(p) == ']')
            return fail(p, "trailing comma");
    }
    (*i)++;
    return 1;
}

int pj_end(pj *p) { return pj_peek(p) == -1 ? 0 : fail(p, "unexpected data after the value"); }

int pj_key_is(const mt_bytes *key, const char *name) {
    size_t n = strlen(name);
    return key->n == n && (n == 0 || !memcmp(key->data, name, n)); /* data is NULL for "" */
}

long pj_line_of(const char *s, size_t pos) {
    long line = 1;
    for (size_t i = 0; i < pos; i++)
        line += s[i] == '\n';
    return line;
}

int pj_fields(pj *p, const char *const *names, int n, mt_bytes *vals, int *state) {
    mt_bytes key = {0};
    int i = 0, rc;
    if (pj_obj_begin(p))
        return -1;
    while ((rc = pj_obj_next(p, &i, &key)) == 1) {
        int k, sub = 0;
        for (k = 0; k < n; k++) {
            size_t len = strlen(names[k]);
            if (pj_key_is(&key, names[k]))
                break;
            if (key.n > 0 && key.n < len && !memcmp(names[k], key.data, key.n) && names[k][key.n] == '.') {
                sub = 1;
                break;
            }
        }
        if (k < n && sub && pj_peek(p) == '{') {
            const char *rest[8];
            int idx[8], m = 0;
            for (int j = 0; j < n && m < 8; j++)
                if (strlen(names[j]) > key.n && !memcmp(names[j], key.data, key.n) &&
                    names[j][key.n] == '.') {
                    rest[m] = names[j] + key.n + 1;
                    idx[m++] = j;
                }
            mt_bytes v[8] = {{0}};
            int st[8] = {0};
            rc = pj_fields(p, rest, m, v, st);
            for (int j = 0; j < m; j++) {
                if (st[j]) {
                    mt_bytes_free(&vals[idx[j]]);
                    vals[idx[j]] = v[j];
                    state[idx[j]] = st[j];
                } else {
                    mt_bytes_free(&v[j]);
                }
            }
        } else if (k < n && !sub && pj_peek(p) == '"') {
            vals[k].n = 0;
            rc = pj_string(p, &vals[k]);
            state[k] = 1;
        } else {
            int null = pj_peek(p) == 'n';
            rc = pj_skip(p);
            if (k < n && !sub)
                state[k] = null ? 3 : 2;
        }
        if (rc)
            break;
    }
    mt_bytes_free(&key);
    return rc == 0 ? 0 : -1;
}
