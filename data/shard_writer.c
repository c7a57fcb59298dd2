#include "data/shard_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shard.h"

enum { CHUNK = 1 << 20, MAX_NAMES = 255 };

struct shard_writer {
    char path[4096], tmp[4200];
    char tokenizer[64], source[1024];
    hid_t file, tokens, mask;
    int vocab_size, eot_token, with_mask, wide;
    void *tok_buf; /* uint16 or uint32, CHUNK entries */
    uint8_t *mask_buf;
    long n_buf, n_written;
    uint64_t *docs;
    uint8_t *doc_src;
    long n_docs, cap_docs;
    int any_source, n_names;
    char *names[MAX_NAMES];
};

shard_writer *shard_writer_open(const char *path, const char *tokenizer, int vocab_size, int eot_token,
                                const char *source, int with_mask, mt_err *err) {
    h5_quiet();
    shard_writer *w = mt_calloc(1, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path);
    snprintf(w->tokenizer, sizeof w->tokenizer, "%s", tokenizer);
    snprintf(w->source, sizeof w->source, "%s", source);
    w->vocab_size = vocab_size;
    w->eot_token = eot_token;
    w->with_mask = with_mask;
    w->wide = vocab_size > 65535;
    hid_t fapl = h5_fapl();
    /* The root group's object header would carry timestamps too (h5_dcpl only covers datasets). */
    hid_t fcpl = h5_fcpl();
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (w->file < 0) {
        mt_fail(err, "%s: cannot create (is the folder writable?)", w->tmp);
        free(w);
        return NULL;
    }
    w->tokens = w->mask = -1;
    w->tok_buf = mt_malloc((size_t)CHUNK * (w->wide ? 4 : 2));
    w->mask_buf = with_mask ? mt_malloc(CHUNK) : NULL;
    w->cap_docs = 1024;
    w->docs = mt_malloc((size_t)w->cap_docs * sizeof *w->docs);
    w->doc_src = mt_malloc((size_t)w->cap_docs);
    w->docs[0] = 0;
    return w;
}

/* The datasets are created at the first flush: chunks of CHUNK tokens if the shard fills one, else a
 * single chunk of exactly the shard's size (no 2 MiB chunk for a small shard). */
static hid_t create(hid_t file, const char *name, hid_t type, hsize_t chunk) {
    hsize_t dims = 0, maxdims = H5S_UNLIMITED;
    hid_t sp = H5Screate_simple(1, &dims, &maxdims), dcpl = h5_dcpl();
    H5Pset_chunk(dcpl, 1, &chunk);
    hid_t d = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

static int write_at(hid_t d, hid_t memtype, long at, long n, const void *data) {
    hsize_t size = (hsize_t)(at + n), off = (hsize_t)at, cnt = (hsize_t)n;
    if (d < 0 || H5Dset_extent(d, &size) < 0)
        return -1;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &cnt, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL);
    herr_t rc = H5Dwrite(d, memtype, ms, fs, H5P_DEFAULT, data);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc < 0 ? -1 : 0;
}

static int flush(shard_writer *w, mt_err *err) {
    if (w->n_buf == 0)
        return 0;
    if (w->tokens < 0) {
        hsize_t chunk = (hsize_t)w->n_buf;
        w->tokens = create(w->file, "tokens", w->wide ? H5T_STD_U32LE : H5T_STD_U16LE, chunk);
        if (w->with_mask)
            w->mask = create(w->file, "loss_mask", H5T_STD_U8LE, chunk);
    }
    if (write_at(w->tokens, w->wide ? H5T_NATIVE_UINT32 : H5T_NATIVE_UINT16, w->n_written, w->n_buf,
                 w->tok_buf) ||
        (w->with_mask && write_at(w->mask, H5T_NATIVE_UINT8, w->n_written, w->n_buf, w->mask_buf)))
        return mt_fail(err, "%s: write failed (disk full?)", w->tmp);
    w->n_written += w->n_buf;
    w->n_buf = 0;
    return 0;
}

int shard_writer_append(shard_writer *w, const int32_t *tokens, const uint8_t *mask, long n, mt_err *err) {
    while (n > 0) {
        long k = CHUNK - w->n_buf < n ? CHUNK - w->n_buf : n;
        for (long i = 0; i < k; i++) {
            if (w->wide)
                ((uint32_t *)w->tok_buf)[w->n_buf + i] = (uint32_t)tokens[i];
            else
                ((uint16_t *)w->tok_buf)[w->n_buf + i] = (uint16_t)tokens[i];
        }
        if (w->with_mask)
            memcpy(w->mask_buf + w->n_buf, mask, (size_t)k);
        w->n_buf += k;
        tokens += k;
        mask = mask ? mask + k : NULL;
        n -= k;
        if (w->n_buf == CHUNK && flush(w, err))
            return -1;
    }
    return 0;
}

static int name_index(shard_writer *w, const char *name) {
    for (int i = 0; i < w->n_names; i++)
        if (!strcmp(w->names[i], name))
            return i;
    if (w->n_names == MAX_NAMES)
        return MAX_NAMES;
    char *s = mt_strdup(name);
    for (char *c = s; *c; c++)
        if (*c == '\n')
            *c = ' ';
    w->names[w->n_names] = s;
    return w->n_names++;
}

void shard_writer_end_doc(shard_writer *w, const char *source_name) {
    if (w->n_docs + 2 > w->cap_docs) {
        w->cap_docs *= 2;
        w->docs = realloc(w->docs, (size_t)w->cap_docs * sizeof *w->docs);
        w->doc_src = realloc(w->doc_src, (size_t)w->cap_docs);
        CHECK(w->docs && w->doc_src, "out of memory");
    }
    if (source_name)
        w->any_source = 1;
    w->doc_src[w->n_docs] = (uint8_t)name_index(w, source_name ? source_name : "");
    w->docs[++w->n_docs] = (uint64_t)(w->n_written + w->n_buf);
}

long shard_writer_tokens(const shard_writer *w) { return w->n_written + w->n_buf; }

static herr_t write_fixed(hid_t file, const char *name, hid_t type, hid_t memtype, hsize_t n,
                          const void *data) {
    hid_t sp = H5Screate_simple(1, &n, NULL), dcpl = h5_dcpl();
    hid_t d = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return rc;
}

static void free_names(shard_writer *w) {
    for (int i = 0; i < w->n_names; i++)
        free(w->names[i]);
    free(w->tok_buf);
    free(w->mask_buf);
    free(w->docs);
    free(w->doc_src);
    free(w);
}

int shard_writer_close(shard_writer *w, mt_err *err) {
    int bad = flush(w, err) < 0;
    if (!bad && w->tokens < 0) { /* no token at all: an empty dataset */
        w->tokens = create(w->file, "tokens", w->wide ? H5T_STD_U32LE : H5T_STD_U16LE, 1);
        if (w->with_mask)
            w->mask = create(w->file, "loss_mask", H5T_STD_U8LE, 1);
    }
    bad = bad || write_fixed(w->file, "doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, (hsize_t)w->n_docs + 1,
                             w->docs) < 0;
    if (!bad && w->any_source && w->n_docs > 0) {
        bad = write_fixed(w->file, "doc_source", H5T_STD_U8LE, H5T_NATIVE_UINT8, (hsize_t)w->n_docs,
                          w->doc_src) < 0;
        size_t len = 1;
        for (int i = 0; i < w->n_names; i++)
            len += strlen(w->names[i]) + 1;
        char *joined = mt_calloc(len + 16, 1);
        for (int i = 0; i < w->n_names; i++) {
            strcat(joined, w->names[i]);
            if (i + 1 < w->n_names)
                strcat(joined, "\n");
        }
        if (w->n_names == MAX_NAMES)
            strcat(joined, "\n(other)");
        h5_put_str(w->file, "doc_source_names", joined);
        free(joined);
    }
    h5_put_str(w->file, "format", SHARD_FORMAT);
    h5_put_i64(w->file, "format_version", SHARD_FORMAT_VERSION);
    h5_put_str(w->file, "tokenizer", w->tokenizer);
    h5_put_i64(w->file, "vocab_size", w->vocab_size);
    h5_put_i64(w->file, "eot_token", w->eot_token);
    h5_put_i64(w->file, "n_tokens", w->n_written);
    h5_put_i64(w->file, "n_docs", w->n_docs);
    h5_put_str(w->file, "source", w->source);
    if (w->mask >= 0)
        H5Dclose(w->mask);
    if (w->tokens >= 0)
        H5Dclose(w->tokens);
    bad = H5Fclose(w->file) < 0 || bad;
    int out = 0;
    if (bad)
        out = mt_fail(err, "%s: write failed (disk full?)", w->tmp);
    else if (rename(w->tmp, w->path))
        out = mt_fail(err, "%s: cannot rename to %s", w->tmp, w->path);
    if (out)
        remove(w->tmp);
    free_names(w);
    return out;
}

void shard_writer_abort(shard_writer *w) {
    if (w->mask >= 0)
        H5Dclose(w->mask);
    if (w->tokens >= 0)
        H5Dclose(w->tokens);
    H5Fclose(w->file);
    remove(w->tmp);
    free_names(w);
}
