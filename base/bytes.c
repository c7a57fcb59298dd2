#include "base/bytes.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

void mt_bytes_append(mt_bytes *b, const char *data, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        CHECK(b->data, "out of memory (%zu bytes)", cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->n, data, n);
    b->n += n;
}

void mt_bytes_free(mt_bytes *b) {
    free(b->data);
    *b = (mt_bytes){0};
}
