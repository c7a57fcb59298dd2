/* Fuzz target: the token shard reader (data/shard.c) and the loader over one shard (data/loader.c,
 * loader_check.c). The input picks every root attribute (absent, right, another value, another type or
 * string storage, an array) and the datasets /tokens, /doc_offsets and /loss_mask (type, shape, length,
 * values); the target writes that HDF5 file and opens it as bin/train does. Whatever the file holds, the
 * readers must return a one-line error or data within the shard: never crash, leak or read out of bounds. */
#include <stdlib.h>
#include <string.h>

#include "data/loader.h"
#include "tests/fuzz/input.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_h5_quiet();
    return 0;
}

/* The shard the input describes, written to path. */
static void write_shard(fz *f, const char *path, int *vocab) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    size_t n = fz_u8(f) % 200, docs = 1 + fz_u8(f) % 4;
    *vocab = 2 + fz_u8(f) % 300;
    uint64_t *off = calloc(docs + 1, sizeof *off);
    for (size_t d = 1; d <= docs; d++) /* increasing, ending at n, unless the input breaks them */
        off[d] = d == docs ? n : off[d - 1] + (n - off[d - 1]) * (fz_u8(f) % 8) / 8;
    if (fz_u8(f) % 8 == 0)
        off[fz_u8(f) % (docs + 1)] = fz_u64(f) % (n + 3);
    fz_attr(f, file, "format", 0, "meshtrain.tokens");
    fz_attr(f, file, "format_version", 1, NULL);
    fz_attr(f, file, "tokenizer", 0, "gpt2");
    fz_attr(f, file, "vocab_size", *vocab, NULL);
    fz_attr(f, file, "eot_token", 0, NULL);
    fz_attr(f, file, "n_tokens", (long long)n, NULL);
    fz_attr(f, file, "n_docs", (long long)docs, NULL);
    fz_attr(f, file, "source", 0, "fuzz");
    fz_dataset(f, file, "tokens", *vocab > 65535 ? H5T_STD_U32LE : H5T_STD_U16LE, NULL, n);
    fz_dataset(f, file, "doc_offsets", H5T_STD_U64LE, off, docs + 1);
    if (fz_u8(f) & 1)
        fz_dataset(f, file, "loss_mask", H5T_STD_U8LE, NULL, n);
    free(off);
    H5Fclose(file);
}

/* bin/train's path: the loader opens and checks the shard, then reads sequences. */
static void read_as_loader(const char *path, int vocab, int examples, int T) {
    loader l;
    mt_err err;
    char *paths[1] = {(char *)path};
    if (loader_open(&l, examples ? LOADER_EXAMPLES : LOADER_STREAM, paths, 1, T, 7, vocab, vocab, &err) ==
        0) {
        if (loader_check_shard(&l, 0, 0, &err) == 0) {
            int32_t *tok = malloc((size_t)2 * (T + 1) * sizeof *tok);
            float *w = malloc((size_t)2 * T * sizeof *w);
            for (long s = 0; s < l.n_seq && s < 4; s++)
                loader_sequence(&l, s, tok, w, &err);
            loader_fixed(&l, l.n_seq - 1, 2, tok, w, &err);
            free(tok);
            free(w);
        }
        loader_close(&l);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz f = {data, size};
    const char *path = fz_scratch("shard");
    int vocab, mode = fz_u8(&f);
    write_shard(&f, path, &vocab);
    shard s;
    mt_err err;
    if (shard_open(&s, path, &err) == 0) {
        uint64_t *docs;
        if (shard_doc_offsets(&s, &docs, &err) == 0)
            free(docs);
        int32_t out[8];
        uint8_t mask[8];
        long n = s.n_tokens < 8 ? s.n_tokens : 8;
        shard_read(&s, s.n_tokens - n, n, out, mask, &err);
        shard_read(&s, s.n_tokens - 1, 2, out, mask, &err); /* beyond the end: an error, not a read */
        shard_close(&s);
    }
    read_as_loader(path, vocab, mode & 1, 1 + (mode >> 1) % 16);
    remove(path);
    return 0;
}
