/* ckpt_latest_valid (DESIGN 7): the checkpoint a run resumes from, chosen by rank 0: DIR/latest when it
 * verifies, else the newest DIR/step_N.h5 that does. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/h5.h"
#include "train/ckpt_internal.h"

/* snprintf for messages where truncation is acceptable (paths in a one-line note). */
static void text(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void text(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static int latest_local(const char *dir, char *path_out, size_t cap, char *note, size_t note_cap,
                        mt_err *err) {
    char link[4096], target[4096], why[1100] = "", tried[4096] = "";
    text(link, sizeof link, "%s/latest", dir);
    ssize_t k = readlink(link, target, sizeof target - 1);
    mt_err e;
    if (k < 0)
        text(why, sizeof why, "%s is missing", link);
    else {
        target[k] = 0;
        if (target[0] == '/')
            text(tried, sizeof tried, "%s", target);
        else
            text(tried, sizeof tried, "%s/%s", dir, target);
        if (!ckpt_verify_file(tried, &e)) {
            text(path_out, cap, "%s", tried);
            if (note && note_cap)
                note[0] = 0;
            return 0;
        }
        text(why, sizeof why, "%s -> %s fails verification (%s)", link, target, e.msg);
    }
    long *steps;
    int n = ckpt_list_steps(dir, &steps);
    if (n < 0)
        return mt_fail(err, "%s: cannot read the checkpoint folder", dir);
    int rc = -1;
    for (int i = n - 1; i >= 0 && rc; i--) {
        char path[4096];
        text(path, sizeof path, "%s/step_%ld.h5", dir, steps[i]);
        if (strcmp(path, tried) && !ckpt_verify_file(path, &e)) {
            text(path_out, cap, "%s", path);
            if (note && note_cap)
                text(note, note_cap, "checkpoint: %s; resuming from %s instead", why, path);
            rc = 0;
        }
    }
    free(steps);
    return rc ? mt_fail(err, "%s: no valid checkpoint (%s; %d step_*.h5 files checked)", dir, why, n) : 0;
}

int ckpt_latest_valid(const char *dir, char *path_out, size_t cap, char *note, size_t note_cap, MPI_Comm comm,
                      mt_err *err) {
    h5_quiet();
    int rank;
    MPI_Comm_rank(comm, &rank);
    int rc = rank == 0 ? latest_local(dir, path_out, cap, note, note_cap, err) : 0;
    if (ckpt_agree(rc, err, comm))
        return -1;
    MPI_Bcast(path_out, (int)cap, MPI_CHAR, 0, comm);
    if (note && note_cap)
        MPI_Bcast(note, (int)note_cap, MPI_CHAR, 0, comm);
    return 0;
}
