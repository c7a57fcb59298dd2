/* Fuzz target: the safetensors header parser (train/safetensors.c, st_parse_header). The input is the
 * header's JSON after an 8-byte little-endian data-buffer length (as in the file, where the header length
 * comes first). Properties: an accepted header describes tensors that tile the data buffer exactly, each
 * of dtype size x elements bytes, in name order, and (for plain names) st_header_build writes it back to a
 * header that parses to the same tensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/input.h"
#include "train/safetensors.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 0;
}

static void check_tiling(const st_header *h, uint64_t data_len) {
    uint64_t sum = 0;
    for (size_t i = 0; i < h->n; i++) {
        const st_tensor *t = &h->t[i];
        fz_check(t->begin <= t->end && t->end <= data_len, "a tensor lies inside the data buffer");
        fz_check(st_numel(t) * st_dtype_size(t->dtype) == t->end - t->begin,
                 "a tensor's bytes match its shape");
        fz_check(i == 0 || strcmp(h->t[i - 1].name, t->name) < 0, "names are sorted and unique");
        sum += t->end - t->begin;
    }
    fz_check(sum == data_len, "the tensors cover the data buffer");
}

/* Names that st_header_build writes as they are (it is for the parameter table's plain names). */
static int plain_names(const st_header *h) {
    for (size_t i = 0; i < h->n; i++)
        for (const char *c = h->t[i].name; *c; c++)
            if (*c <= 0x20 || *c == '"' || *c == '\\' || *c >= 0x7f)
                return 0;
    return 1;
}

static void check_rebuild(const st_header *h, uint64_t data_len) {
    if (!plain_names(h))
        return;
    st_tensor *copy = malloc((h->n ? h->n : 1) * sizeof *copy);
    memcpy(copy, h->t, h->n * sizeof *copy);
    size_t len;
    char *json = st_header_build(copy, h->n, &len); /* offsets in name order: the same sizes */
    st_header again;
    mt_err err;
    fz_check(st_parse_header(json, len, data_len, "rebuilt", &again, &err) == 0, "a rebuilt header parses");
    fz_check(again.n == h->n, "a rebuilt header has the same tensors");
    for (size_t i = 0; i < h->n; i++)
        fz_check(!strcmp(again.t[i].name, h->t[i].name) && again.t[i].dtype == h->t[i].dtype &&
                     again.t[i].ndim == h->t[i].ndim &&
                     !memcmp(again.t[i].shape, h->t[i].shape, sizeof h->t[i].shape[0] * (size_t)h->t[i].ndim),
                 "a rebuilt tensor is the same");
    st_header_free(&again);
    free(json);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 8)
        return 0;
    uint64_t data_len = 0;
    for (int i = 7; i >= 0; i--)
        data_len = data_len << 8 | data[i];
    data_len %= 1ULL << 40;
    st_header h;
    mt_err err;
    if (st_parse_header((const char *)data + 8, size - 8, data_len, "fuzz", &h, &err) == 0) {
        check_tiling(&h, data_len);
        check_rebuild(&h, data_len);
        st_header_free(&h);
    }
    return 0;
}
