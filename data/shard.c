#include "data/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An integer root attribute of a shard in [lo, hi]: 0, or -1 with a line naming it. */
static int shard_attr(const shard *s, const char *name, long long lo, long long hi, long *out, mt_err *err) {
    long long v;
    int rc = h5_get_i64(s->file, name, &v);
    if (rc == H5_ATTR_MISSING)
        return mt_fail(err, "%s: attribute %s is missing", s->path, name);
    if (rc)
        return mt_fail(err, "%s: attribute %s is not a single integer", s->path, name);
    if (v < lo || v > hi)
        return mt_fail(err, "%s: attribute %s = %lld is outside [%lld, %lld]", s->path, name, v, lo, hi);
    *out = (long)v;
    return 0;
}

/* The format attribute, a string (either storage) equal to SHARD_FORMAT. */
static int shard_format(const shard *s, mt_err *err) {
    int rc;
    char *fmt = h5_get_str(s->file, "format", &rc), clip[MT_CLIP_CAP];
    if (!fmt)
        rc = mt_fail(err, "%s: not a token shard (attribute format is %s; a shard's is \"%s\")", s->path,
                     rc == H5_ATTR_MISSING ? "missing" : "not a string", SHARD_FORMAT);
    else if (strcmp(fmt, SHARD_FORMAT))
        rc = mt_fail(err, "%s: not a token shard (attribute format is \"%s\"; a shard's is \"%s\")", s->path,
                     mt_clip(fmt, clip), SHARD_FORMAT);
    free(fmt);
    return rc ? -1 : 0;
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
    char clip[MT_CLIP_CAP];
    if (!path[0])
        return mt_fail(err, "an empty file name is not a token shard");
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return mt_fail(err, "%s: cannot open token shard: %s", mt_clip(path, clip), strerror(errno));
    fclose(probe);
    hid_t fapl = h5_fapl();
    s->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (s->file < 0)
        return mt_fail(err, "%s: not an HDF5 file (or corrupted)", path);
    long version = 0, vocab = 0, eot = 0;
    const long long MAXN = 1LL << 50;
    if (shard_format(s, err) || shard_attr(s, "format_version", 0, MAXN, &version, err) ||
        (version != SHARD_FORMAT_VERSION &&
         mt_fail(err, "%s: format_version %ld is not supported (this build reads %d)", path, version,
                 SHARD_FORMAT_VERSION)) ||
        shard_attr(s, "vocab_size", 1, INT32_MAX, &vocab, err) ||
        shard_attr(s, "eot_token", 0, vocab - 1, &eot, err) ||
        shard_attr(s, "n_tokens", 0, MAXN, &s->n_tokens, err) ||
        shard_attr(s, "n_docs", 0, MAXN, &s->n_docs, err)) {
        shard_close(s);
        return -1;
    }
    s->vocab_size = (int)vocab;
    s->eot_token = (int)eot;
    s->tokens = H5Lexists(s->file, "tokens", H5P_DEFAULT) > 0 ? H5Dopen2(s->file, "tokens", H5P_DEFAULT) : -1;
    size_t want = vocab > 65535 ? 4 : 2;
    if (s->tokens < 0 || !unsigned_int_of(s->tokens, want)) {
        shard_close(s);
        return mt_fail(err, "%s: /tokens missing or not uint%zu", path, want * 8);
    }
    long len = dataset_len(s->tokens);
    if (len != s->n_tokens) {
        shard_close(s);
        if (len < 0)
            return mt_fail(err, "%s: /tokens is not one-dimensional", path);
        return mt_fail(err, "%s: /tokens has %ld entries but attribute n_tokens says %ld", path, len,
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
