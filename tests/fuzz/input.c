#define _DEFAULT_SOURCE
#include "tests/fuzz/input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint8_t fz_u8(fz *f) {
    if (!f->n)
        return 0;
    f->n--;
    return *f->p++;
}

uint64_t fz_u64(fz *f) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | fz_u8(f);
    return v;
}

char *fz_str(fz *f, size_t max) {
    size_t n = (size_t)fz_u8(f) << 8 | fz_u8(f);
    n = n < max ? n : max;
    n = n < f->n ? n : f->n;
    char *s = malloc(n + 1);
    memcpy(s, f->p, n);
    s[n] = 0;
    f->p += n;
    f->n -= n;
    return s;
}

const char *fz_scratch(const char *what) {
    static char path[512];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/meshtrain-fuzz-%s-%d.h5", dir && *dir ? dir : "/tmp", what,
             (int)getpid());
    return path;
}

void fz_check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "property failed: %s\n", what);
        abort();
    }
}

void fz_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static void put(hid_t obj, const char *name, hid_t type, hid_t space, const void *v) {
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, type, v);
        H5Aclose(a);
    }
}

static void put_string(hid_t obj, const char *name, const char *s, int vlen, int utf8) {
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, vlen ? H5T_VARIABLE : (strlen(s) ? strlen(s) : 1));
    H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
    put(obj, name, t, sp, vlen ? (const void *)&s : (const void *)s);
    H5Tclose(t);
    H5Sclose(sp);
}

static void put_scalar(hid_t obj, const char *name, hid_t type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    put(obj, name, type, sp, v);
    H5Sclose(sp);
}

void fz_attr(fz *f, hid_t obj, const char *name, long long good, const char *good_str) {
    uint8_t kind = fz_u8(f) % 12;
    long long v = kind == 1 ? good + (int8_t)fz_u8(f) : (long long)fz_u64(f);
    char *s = kind >= 5 && kind <= 8 ? fz_str(f, 4096) : NULL;
    if (kind == 0 || kind == 9 || kind == 10) { /* mostly the good value, so the readers get past it */
        if (good_str)
            put_string(obj, name, good_str, kind == 9, kind == 9);
        else
            put_scalar(obj, name, kind == 10 ? H5T_STD_U64LE : H5T_STD_I64LE, &good);
    } else if (kind == 1 || kind == 2) {
        put_scalar(obj, name, H5T_STD_I64LE, &v);
    } else if (kind == 3) {
        put_scalar(obj, name, H5T_STD_U64LE, &v);
    } else if (kind == 4) {
        double d = (double)good + (double)(int8_t)(v & 0xff) / 3.0;
        put_scalar(obj, name, H5T_IEEE_F64LE, &d);
    } else if (kind >= 5 && kind <= 8) {
        put_string(obj, name, s, kind >= 7, kind & 1);
    } else if (kind == 11) {
        hsize_t n = 1 + fz_u8(f) % 4;
        long long arr[4] = {good, v, 0, -1};
        hid_t sp = H5Screate_simple(1, &n, NULL);
        put(obj, name, H5T_NATIVE_LLONG, sp, arr);
        H5Sclose(sp);
    }
    free(s);
}

void fz_dataset(fz *f, hid_t file, const char *name, hid_t type, const uint64_t *vals, size_t n) {
    static const hid_t *const OTHER[] = {&H5T_STD_U8LE_g,  &H5T_STD_U16LE_g, &H5T_STD_U32LE_g,
                                         &H5T_STD_U64LE_g, &H5T_STD_I32LE_g, &H5T_IEEE_F32LE_g,
                                         &H5T_STD_U16BE_g, &H5T_IEEE_F64LE_g};
    uint8_t how = fz_u8(f);
    if (how % 16 == 15)
        return; /* absent */
    hid_t t = how % 16 == 14 ? *OTHER[fz_u8(f) % 8] : type;
    hsize_t dims[2] = {n, 1};
    int rank = how % 16 == 13 ? 2 : 1;
    if (how % 16 == 12) /* a wrong length */
        dims[0] = (fz_u8(f) & 1) && n ? n - 1 : n + 1;
    if (rank == 2 && n % 2 == 0)
        dims[0] = n / 2, dims[1] = 2;
    uint64_t *buf = calloc(dims[0] * dims[1] + 1, sizeof *buf);
    for (size_t i = 0; i < dims[0] * dims[1]; i++)
        buf[i] = vals && i < n ? vals[i] : fz_u8(f);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        H5Dclose(d);
    }
    H5Sclose(sp);
    free(buf);
}
