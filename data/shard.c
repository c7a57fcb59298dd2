#include "data/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int attr_long(hid_t file, const char *name, long *out) {
    long long v = 0;
    int rc = h5_get_i64(file, name, &v);
    *out = (long)v;
    return rc;
}

static long dataset_len(hid_t d) {
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd == 1)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    return nd == 1 ? (long)dims[0] : -1;
}

static int unsigned_int_of(hid_t d, size_t size) {
    hid_t t = H5Dget_type(d);
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE && H5Tget_size(t) == size;
    H5Tclose(t);
    return ok;
}

int shard_open(shard *s, const char *path, mt_err *err) {
    h5_quiet();
    memset(s, 0, sizeof *s);
    s->file = s->tokens = s->mask = -1;
    snprintf(s->path, sizeof s->path, "%s", path);
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return mt_fail(err, "%s: cannot open token shard", path);
    fclose(probe);
    hid_t fapl = h5_fapl();
    s->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (s->file < 0)
        return mt_fail(err, "%s: not an HDF5 file (or corrupted)", path);
    long version = 0, vocab = 0, eot = 0;
    char *fmt = h5_get_str(s->file, "format");
    int is_shard = fmt && !strcmp(fmt, SHARD_FORMAT);
    free(fmt);
    if (!is_shard) {
        shard_close(s);
        return mt_fail(err, "%s: not a token shard (attribute format != \"%s\")", path, SHARD_FORMAT);
    }
    if (attr_long(s->file, "format_version", &version) || version != SHARD_FORMAT_VERSION ||
        attr_long(s->file, "vocab_size", &vocab) || attr_long(s->file, "eot_token", &eot) ||
        attr_long(s->file, "n_tokens", &s->n_tokens) || attr_long(s->file, "n_docs", &s->n_docs)) {
        shard_close(s);
        return mt_fail(err, "%s: missing or unsupported shard attributes (format_version %ld)", path,
                       version);
    }
    s->vocab_size = (int)vocab;
    s->eot_token = (int)eot;
    s->tokens = H5Lexists(s->file, "tokens", H5P_DEFAULT) > 0 ? H5Dopen2(s->file, "tokens", H5P_DEFAULT) : -1;
    size_t want = vocab > 65535 ? 4 : 2;
    if (s->tokens < 0 || !unsigned_int_of(s->tokens, want)) {
        shard_close(s);
        return mt_fail(err, "%s: /tokens missing or not uint%zu", path, want * 8);
    }
    if (dataset_len(s->tokens) != s->n_tokens) {
        shard_close(s);
        return mt_fail(err, "%s: /tokens has %ld entries but n_tokens says %ld", path, dataset_len(s->tokens),
                       s->n_tokens);
    }
    if (s->n_tokens == 0) {
        shard_close(s);
        return mt_fail(err, "%s: empty shard (no tokens)", path);
    }
    if (H5Lexists(s->file, "loss_mask", H5P_DEFAULT) > 0) {
        s->mask = H5Dopen2(s->file, "loss_mask", H5P_DEFAULT);
        if (s->mask < 0 || !unsigned_int_of(s->mask, 1) || dataset_len(s->mask) != s->n_tokens) {
            shard_close(s);
            return mt_fail(err, "%s: /loss_mask is not uint8 of n_tokens entries", path);
        }
    }
    return 0;
}

void shard_close(shard *s) {
    if (s->mask >= 0)
        H5Dclose(s->mask);
    if (s->tokens >= 0)
        H5Dclose(s->tokens);
    if (s->file >= 0)
        H5Fclose(s->file);
    s->file = s->tokens = s->mask = -1;
}

static int read_range(hid_t d, hid_t memtype, long start, long n, void *out) {
    hid_t fs = H5Dget_space(d);
    hsize_t off = (hsize_t)start, cnt = (hsize_t)n;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL);
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    herr_t rc = H5Dread(d, memtype, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc < 0 ? -1 : 0;
}

int shard_read(shard *s, long start, long n, int32_t *out, uint8_t *mask, mt_err *err) {
    if (start < 0 || start + n > s->n_tokens)
        return mt_fail(err, "%s: read [%ld, %ld) beyond %ld tokens", s->path, start, start + n, s->n_tokens);
    if (read_range(s->tokens, H5T_NATIVE_INT32, start, n, out))
        return mt_fail(err, "%s: cannot read /tokens [%ld, %ld) (corrupted?)", s->path, start, start + n);
    if (mask) {
        if (s->mask < 0)
            memset(mask, 1, (size_t)n);
        else if (read_range(s->mask, H5T_NATIVE_UINT8, start, n, mask))
            return mt_fail(err, "%s: cannot read /loss_mask [%ld, %ld)", s->path, start, start + n);
    }
    return 0;
}

int shard_doc_offsets(shard *s, uint64_t **out, mt_err *err) {
    hid_t d = H5Lexists(s->file, "doc_offsets", H5P_DEFAULT) > 0
                  ? H5Dopen2(s->file, "doc_offsets", H5P_DEFAULT)
                  : -1;
    if (d < 0 || !unsigned_int_of(d, 8) || dataset_len(d) != s->n_docs + 1) {
        if (d >= 0)
            H5Dclose(d);
        return mt_fail(err, "%s: /doc_offsets is not uint64 of n_docs + 1 entries", s->path);
    }
    uint64_t *o = mt_malloc((size_t)(s->n_docs + 1) * sizeof *o);
    herr_t rc = H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, o);
    H5Dclose(d);
    int ok = rc >= 0 && o[0] == 0 && o[s->n_docs] == (uint64_t)s->n_tokens;
    for (long i = 0; ok && i < s->n_docs; i++)
        ok = o[i] <= o[i + 1];
    if (!ok) {
        free(o);
        return mt_fail(err, "%s: /doc_offsets is not an increasing list from 0 to n_tokens", s->path);
    }
    *out = o;
    return 0;
}
