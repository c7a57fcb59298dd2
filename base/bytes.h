/* A growable byte buffer, not NUL-terminated: decoded text, JSON strings, prompts. */
#ifndef MT_BYTES_H
#define MT_BYTES_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t n, cap;
} mt_bytes;

void mt_bytes_append(mt_bytes *b, const char *data, size_t n);
void mt_bytes_free(mt_bytes *b);

#endif
