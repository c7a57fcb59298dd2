/* The HDF5 conventions every file of the project follows (DESIGN 6): the file and dataset properties, the
 * quiet error stack, and scalar attributes written and read one way. Token shards and checkpoints are both
 * built on these. */
#ifndef MT_H5_H
#define MT_H5_H

#include <hdf5.h>
#include <stdint.h>

/* File access (checksummed metadata), file creation and dataset creation properties (no timestamps, so
 * identical content gives identical files). The caller closes them. */
hid_t h5_fapl(void);
hid_t h5_fcpl(void);
hid_t h5_dcpl(void);
/* Turns off HDF5's own error stack printing, once (errors are reported as one line instead). */
void h5_quiet(void);
/* A file whose close failed stays half-open inside HDF5, which then crashes when the library shuts down
 * (at exit, or in MPI_Finalize): such a process must end with _exit instead. */
void h5_mark_broken(void);
int h5_is_broken(void);

/* Scalar attributes: 64-bit integers and fixed-length strings (an empty string is stored as one space,
 * since HDF5 has no zero-length fixed string). Writers return 0, or -1 on failure. */
int h5_put_i64(hid_t obj, const char *name, long long v);
int h5_put_u64(hid_t obj, const char *name, uint64_t v);
int h5_put_str(hid_t obj, const char *name, const char *v);
/* Readers of single-value attributes: 0, H5_ATTR_MISSING, or H5_ATTR_KIND (another type, or not one
 * value). */
enum { H5_ATTR_MISSING = -1, H5_ATTR_KIND = -2 };
int h5_get_i64(hid_t obj, const char *name, long long *out);
int h5_get_u64(hid_t obj, const char *name, uint64_t *out);
/* A string attribute stored either way (fixed length, or variable length as h5py writes a Python str),
 * newly allocated; NULL when it cannot be read, with *rc (may be NULL) set as above. */
char *h5_get_str(hid_t obj, const char *name, int *rc);

#endif
