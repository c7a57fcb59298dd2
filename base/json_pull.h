/* A small strict pull parser for JSON text in memory (run and model configs, prepare's JSON lines, JSON
 * arrays and template files, generate's batch files).
 * Strings are decoded to raw bytes: escapes are resolved, other bytes are copied as they are (invalid
 * UTF-8 is left for the tokenizer to replace), and a lone UTF-16 surrogate escape becomes U+FFFD and is
 * counted. Errors record a message and the byte offset where parsing stopped. */
#ifndef MT_JSON_PULL_H
#define MT_JSON_PULL_H

#include "base/bytes.h"

typedef struct {
    const char *s;
    size_t n, pos;
    size_t surrogates; /* lone surrogate escapes replaced by U+FFFD */
    int depth;
    char err[160];
    size_t err_pos;
} pj;

/* A UTF-8 byte order mark at the start of s is skipped (Windows editors write one). */
void pj_init(pj *p, const char *s, size_t n);
/* Skips whitespace; returns the next byte, or -1 at the end. */
int pj_peek(pj *p);
/* A string value, appended decoded to out (which is not cleared). 0, or -1 with the error set. */
int pj_string(pj *p, mt_bytes *out);
/* Skips (and validates) any value. */
int pj_skip(pj *p);
/* Objects: pj_obj_begin, then pj_obj_next(p, &i, key) until it returns 0 (the closing brace); 1 means
 * key holds the next key (cleared first) and the parser is at its value, which the caller must consume. */
int pj_obj_begin(pj *p);
int pj_obj_next(pj *p, int *i, mt_bytes *key);
/* Arrays: pj_arr_begin, then pj_arr_next(p, &i) returns 1 before each element, 0 at the end. */
int pj_arr_begin(pj *p);
int pj_arr_next(pj *p, int *i);
/* 0 if only whitespace remains. */
int pj_end(pj *p);
/* key == the NUL-terminated name? */
int pj_key_is(const mt_bytes *key, const char *name);
/* 1-based line number of byte offset pos in s. */
long pj_line_of(const char *s, size_t pos);

/* Parses an object, keeping the string values of the named fields ("a.b" names field b of object a):
 * state[k] is 0 if absent, 1 if vals[k] holds the string, 2 if present but not a string, 3 if null. */
int pj_fields(pj *p, const char *const *names, int n, mt_bytes *vals, int *state);

#endif
