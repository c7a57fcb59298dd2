/* What the fuzz targets share: a cursor that turns the fuzzer's bytes into choices and values (running out
 * of input gives zeros, so every input is a complete test), a scratch file per process, and HDF5
 * attributes and datasets built from those choices, for the readers of token shards and checkpoints. */
#ifndef MT_FUZZ_INPUT_H
#define MT_FUZZ_INPUT_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;
    size_t n;
} fz;

uint8_t fz_u8(fz *f);
uint64_t fz_u64(fz *f);
/* A string of the input (a 16-bit length, then up to max bytes), as a NUL-terminated copy (free it). */
char *fz_str(fz *f, size_t max);

/* A file name of this process for the target's scratch file (in $TMPDIR, else /tmp). */
const char *fz_scratch(const char *what);

/* An attribute `name` on obj of a kind the input picks: absent, `good` (an integer, or a string when
 * good_str is given), another integer, an unsigned 64-bit value, a double, a fixed- or variable-length
 * string (ASCII or UTF-8) from the input, an integer array, or an empty string. */
void fz_attr(fz *f, hid_t obj, const char *name, long long good, const char *good_str);
/* A 1-D or 2-D dataset `name` of n elements of a type the input picks (mostly `type`), values from the
 * input, or from vals when not NULL; absent when the input says so. */
void fz_dataset(fz *f, hid_t file, const char *name, hid_t type, const uint64_t *vals, size_t n);

/* A property of the code under test: when it does not hold, the target says which and aborts (libFuzzer
 * saves the input). */
void fz_check(int ok, const char *what);

/* Installs an HDF5 error handler that prints nothing (the readers report errors as values). */
void fz_h5_quiet(void);

#endif
