#include "base/h5.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static int h5_broken;
void h5_mark_broken(void) { h5_broken = 1; }
int h5_is_broken(void) { return h5_broken; }

hid_t h5_fapl(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* Checksummed metadata: with the default bounds, corrupted files crashed HDF5 1.10.8. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V110);
    return fapl;
}

hid_t h5_fcpl(void) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0); /* the root group's times too: identical content, identical files */
    return fcpl;
}

hid_t h5_dcpl(void) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0); /* identical content gives identical files */
    return dcpl;
}

static int put_scalar(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mem_type, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc < 0 ? -1 : 0;
}

int h5_put_i64(hid_t obj, const char *name, long long v) {
    return put_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &v);
}

int h5_put_u64(hid_t obj, const char *name, uint64_t v) {
    return put_scalar(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

int h5_put_str(hid_t obj, const char *name, const char *v) {
    size_t n = strlen(v);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n ? n : 1);
    int rc = put_scalar(obj, name, t, t, n ? v : " ");
    H5Tclose(t);
    return rc;
}

/* The attribute `name` of obj if it holds a single value of class cls (else H5_ATTR_MISSING/H5_ATTR_KIND). */
static hid_t open_single(hid_t obj, const char *name, H5T_class_t cls, int *rc) {
    *rc = H5_ATTR_MISSING;
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t sp = H5Aget_space(a), t = H5Aget_type(a);
    int ok = H5Sget_simple_extent_npoints(sp) == 1 && H5Tget_class(t) == cls;
    H5Tclose(t);
    H5Sclose(sp);
    *rc = H5_ATTR_KIND;
    if (!ok) {
        H5Aclose(a);
        return -1;
    }
    *rc = 0;
    return a;
}

/* A single integer attribute, converted to mem_type. */
static int get_int(hid_t obj, const char *name, hid_t mem_type, void *out) {
    int rc;
    hid_t a = open_single(obj, name, H5T_INTEGER, &rc);
    if (a < 0)
        return rc;
    rc = H5Aread(a, mem_type, out) < 0 ? H5_ATTR_KIND : 0;
    H5Aclose(a);
    return rc;
}

int h5_get_i64(hid_t obj, const char *name, long long *out) {
    return get_int(obj, name, H5T_NATIVE_LLONG, out);
}

int h5_get_u64(hid_t obj, const char *name, uint64_t *out) {
    return get_int(obj, name, H5T_NATIVE_UINT64, out);
}

/* A variable-length string (h5py's `f.attrs[k] = "text"`), copied. */
static char *read_vlen_str(hid_t a, hid_t t) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t)); /* HDF5 converts no character set to another (h5py writes UTF-8) */
    char *v = NULL, *out = NULL;
    if (H5Aread(a, mt, &v) >= 0 && v)
        out = mt_strdup(v);
    if (v)
        H5free_memory(v);
    H5Tclose(mt);
    return out;
}

/* A fixed-length string (h5py's np.bytes_, and h5_put_str), NUL-terminated. */
static char *read_fixed_str(hid_t a, hid_t t) {
    size_t n = H5Tget_size(t);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n + 1);
    H5Tset_cset(mt, H5Tget_cset(t));
    char *out = mt_calloc(n + 1, 1);
    if (H5Aread(a, mt, out) < 0) {
        free(out);
        out = NULL;
    }
    H5Tclose(mt);
    return out;
}

char *h5_get_str(hid_t obj, const char *name, int *rc) {
    int status;
    hid_t a = open_single(obj, name, H5T_STRING, &status);
    char *out = NULL;
    if (a >= 0) {
        hid_t t = H5Aget_type(a);
        out = H5Tis_variable_str(t) > 0 ? read_vlen_str(a, t) : read_fixed_str(a, t);
        H5Tclose(t);
        H5Aclose(a);
        status = out ? 0 : H5_ATTR_KIND;
    }
    if (rc)
        *rc = status;
    return out;
}
