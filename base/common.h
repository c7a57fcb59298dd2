/* Shared basics: fatal checks for programmer errors, and the error buffer that expected failures
 * (bad config, bad file) carry up to the CLI, which prints one line and exits non-zero (DESIGN 8, 9). */
#ifndef MT_COMMON_H
#define MT_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes of every binary (DESIGN 8). */
enum { MT_EXIT_OK = 0, MT_EXIT_INTERNAL = 1, MT_EXIT_BAD_INPUT = 2, MT_EXIT_STOPPED = 3 };

/* A programmer error: prints file:line and aborts. */
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            mt_check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                                         \
    } while (0)

void mt_check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* An expected failure: a one-line message that names the file, key or offset. */
typedef struct {
    char msg[1024];
} mt_err;

/* Fills err (if not NULL) and returns -1, so callers can write `return mt_fail(err, ...)`. */
int mt_fail(mt_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "<prog>: <msg>" on stderr and exits with code. */
void mt_die(const char *prog, int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));

/* The running binary's name ("train", "prepare"), for messages. */
const char *mt_program(void);

/* Ends the process with one line, "out of memory: cannot allocate X GiB for WHAT", and exit code 1. */
void mt_out_of_memory(const char *what, size_t bytes) __attribute__((noreturn));
void *mt_malloc(size_t bytes); /* never returns NULL (mt_out_of_memory) */
void *mt_calloc(size_t n, size_t size);
char *mt_strdup(const char *s);
/* Reads a whole file into a NUL-terminated buffer; NULL with err set on failure. */
char *mt_read_file(const char *path, size_t *len, mt_err *err);
/* Creates the folder path and its missing parents (mkdir -p); a one-line error naming the component that
 * cannot be created or is not a folder. */
int mt_make_dirs(const char *path, mt_err *err);
double mt_now(void); /* monotonic seconds */
/* s for a message: as it is when short, else its first bytes and "... (N bytes)", so that a 10 MB value
 * never fills (or cuts) an error line. buf holds at least MT_CLIP_CAP bytes. */
enum { MT_CLIP_CAP = 128 };
const char *mt_clip(const char *s, char *buf);

/* Whether p is device memory of the SIMT emulator (tests/simt defines it for the emulated build; elsewhere
 * this weak default says no). MPI and HDF5 calls CHECK their buffers with it: device memory must never
 * reach them (DESIGN 4), and the emulated build catches the mistake a real GPU would punish. */
int mt_is_device_memory(const void *p);

static inline size_t mt_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

#endif
