/* HDF5 side of checkpoints: files and groups, typed attributes, and float32 datasets written by parts
 * with per-block CRC32C checksums (DESIGN 6, 7). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/h5.h"
#include "train/ckpt_crc.h"
#include "train/ckpt_internal.h"

hid_t ckpt_create(const char *path, MPI_Comm comm) {
    hid_t fapl = h5_fapl(), fcpl = h5_fcpl();
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    return f;
}

hid_t ckpt_open(const char *path, mt_err *err) {
    if (access(path, R_OK))
        return mt_fail(err, "%s: cannot open checkpoint", path);
    hid_t fapl = h5_fapl();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return mt_fail(err, "%s: not an HDF5 file, or truncated or corrupted", path);
    return f;
}

hid_t ckpt_make_group(hid_t file, const char *name) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_obj_track_times(gcpl, 0);
    hid_t g = H5Gcreate2(file, name, lcpl, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    H5Pclose(lcpl);
    return g;
}

/* The crc32c attribute: its values (malloc'd) and count, or NULL. */
static uint32_t *get_crcs(hid_t d, size_t *n) {
    if (H5Aexists(d, "crc32c") <= 0)
        return NULL;
    hid_t a = H5Aopen(d, "crc32c", H5P_DEFAULT);
    if (a < 0)
        return NULL;
    hid_t sp = H5Aget_space(a);
    hssize_t k = H5Sget_simple_extent_npoints(sp);
    uint32_t *crc = k > 0 ? mt_malloc((size_t)k * sizeof *crc) : NULL;
    if (crc && H5Aread(a, H5T_NATIVE_UINT32, crc) < 0) {
        free(crc);
        crc = NULL;
    }
    *n = k > 0 ? (size_t)k : 0;
    H5Sclose(sp);
    H5Aclose(a);
    return crc;
}

int ckpt_put_crcs(hid_t d, const uint32_t *crc, size_t n) {
    hsize_t dims = n;
    hid_t sp = H5Screate_simple(1, &dims, NULL);
    hid_t a = H5Acreate2(d, "crc32c", H5T_STD_U32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_UINT32, crc);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc < 0 ? -1 : 0;
}

/* Selects the part in the file space and returns the matching memory space: a 1-D run of its elements. */
static hid_t select_part(hid_t fs, const ckpt_part *part) {
    hsize_t total = 0;
    for (int k = 0; k < part->n; k++) {
        H5Sselect_hyperslab(fs, k ? H5S_SELECT_OR : H5S_SELECT_SET, part->start[k], NULL, part->count[k],
                            NULL);
        total += part->count[k][0] * part->count[k][1];
    }
    return H5Screate_simple(1, &total, NULL);
}

hid_t ckpt_create_dataset(hid_t loc, const char *name, int ndim, const hsize_t *dims) {
    hid_t dcpl = h5_dcpl();
    /* Contiguous, allocated at creation (what parallel HDF5 needs), never filled: every byte is written. */
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t fs = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(fs);
    return d;
}

int ckpt_write_part(hid_t d, const ckpt_part *part) {
    CHECK(part->n > 0, "an empty part is not written");
    hid_t fs = H5Dget_space(d);
    hid_t ms = select_part(fs, part), dxpl = H5Pcreate(H5P_DATASET_XFER);
    /* Independent: every rank writes its own rectangles. Collective MPI-IO buys nothing for parts this
     * large and contiguous, and Open MPI 4.1's OMPIO deadlocked in its collective write (fcoll vulcan)
     * when some ranks had nothing to write in a round. */
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT);
    int rc = H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, dxpl, part->data) < 0 ? -1 : 0;
    H5Pclose(dxpl);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc;
}

int ckpt_dataset_shape(hid_t file, const char *name, hsize_t dims[2]) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return -1;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    int ok = (nd == 1 || nd == 2) && H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4;
    if (ok) {
        dims[1] = 1;
        H5Sget_simple_extent_dims(sp, dims, NULL);
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return ok ? nd : -1;
}

/* Reads a contiguous little-endian float32 dataset straight from the file with pread in checksum blocks,
 * so the kernel's readahead overlaps the disk with the checksumming; 1 when it is not such a dataset. */
static int read_raw(hid_t d, const char *path, size_t n, float *out) {
    hid_t t = H5Dget_type(d);
    int le_f32 = H5Tequal(t, H5T_IEEE_F32LE) > 0;
    H5Tclose(t);
    haddr_t off = H5Dget_offset(d);
    if (!le_f32 || off == HADDR_UNDEF || H5Dget_storage_size(d) != n * sizeof *out)
        return 1;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    posix_fadvise(fd, (off_t)off, (off_t)(n * sizeof *out), POSIX_FADV_SEQUENTIAL);
    char *dst = (char *)out;
    size_t want = n * sizeof *out, done = 0;
    while (done < want) {
        size_t piece = want - done < ((size_t)8 << 20) ? want - done : (size_t)8 << 20;
        ssize_t k = pread(fd, dst + done, piece, (off_t)(off + done));
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    close(fd);
    return done == want ? 0 : -1;
}

int ckpt_read_dataset(hid_t file, const char *path, const char *name, size_t n, float *out, mt_err *err) {
    hid_t d = H5Lexists(file, name, H5P_DEFAULT) > 0 ? H5Dopen2(file, name, H5P_DEFAULT) : -1;
    if (d < 0)
        return mt_fail(err, "%s: dataset %s is missing or unreadable", path, name);
    hid_t sp = H5Dget_space(d);
    hssize_t have = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    size_t n_crc = 0;
    uint32_t *crc = get_crcs(d, &n_crc);
    int rc = 0;
    if (have < 0 || (size_t)have != n)
        rc = mt_fail(err, "%s: dataset %s has %lld elements, expected %zu", path, name, (long long)have, n);
    else if (!crc || n_crc != ckpt_crc_blocks(n))
        rc = mt_fail(err, "%s: dataset %s has no valid crc32c attribute", path, name);
    if (!rc) {
        int raw = read_raw(d, path, n, out);
        if (raw < 0 || (raw > 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0))
            rc = mt_fail(err, "%s: dataset %s is unreadable (truncated or corrupted file)", path, name);
    }
    for (size_t b = 0; !rc && b < n_crc; b++) {
        size_t start = b * CKPT_CRC_BLOCK_FLOATS;
        size_t len = n - start < CKPT_CRC_BLOCK_FLOATS ? n - start : CKPT_CRC_BLOCK_FLOATS;
        uint32_t got = crc32c(out + start, len * sizeof *out);
        if (got != crc[b])
            rc = mt_fail(err, "%s: dataset %s fails its checksum in block %zu (bytes %zu..%zu): corrupted",
                         path, name, b, start * 4, (start + len) * 4);
    }
    free(crc);
    H5Dclose(d);
    return rc;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const param_info *const *)a)[0]->name, ((const param_info *const *)b)[0]->name);
}

int ckpt_params_identity(const char *path, const param_table *t, uint32_t *crc, mt_err *err) {
    h5_quiet();
    hid_t f = ckpt_open(path, err);
    if (f < 0)
        return -1;
    const param_info **sorted = mt_malloc((size_t)t->n * sizeof *sorted);
    for (int i = 0; i < t->n; i++)
        sorted[i] = &t->p[i];
    qsort(sorted, (size_t)t->n, sizeof *sorted, by_name);
    uint32_t id = 0;
    size_t total = 0;
    int rc = 0;
    for (int i = 0; i < t->n && !rc; i++) {
        char name[128];
        snprintf(name, sizeof name, "params/%s", sorted[i]->name);
        hid_t d = H5Lexists(f, name, H5P_DEFAULT) > 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
        size_t n = 0;
        uint32_t *blocks = d >= 0 ? get_crcs(d, &n) : NULL;
        if (!blocks)
            rc = mt_fail(err, "%s: dataset /%s or its crc32c attribute is missing", path, name);
        else /* crc32c of all the block checksums, one array after the other */
            id = total ? crc32c_combine(id, crc32c(blocks, n * sizeof *blocks), n * sizeof *blocks)
                       : crc32c(blocks, n * sizeof *blocks);
        total += n;
        free(blocks);
        if (d >= 0)
            H5Dclose(d);
    }
    H5Fclose(f);
    free(sorted);
    *crc = id;
    return rc;
}
