/* The directory side of checkpoints (DESIGN 7): space, atomic publication and retention. A crash at any
 * moment leaves `latest` pointing at a complete, fsynced file (or absent if none was ever published). */
#define _GNU_SOURCE /* fallocate */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "train/ckpt_crc.h"
#include "train/ckpt_internal.h"

/* N from "step_<N>.h5" (decimal digits only), else -1. */
static long step_of(const char *name) {
    if (strncmp(name, "step_", 5))
        return -1;
    const char *p = name + 5, *q = p;
    while (*q >= '0' && *q <= '9')
        q++;
    if (q == p || q - p > 18 || strcmp(q, ".h5"))
        return -1;
    return strtol(p, NULL, 10);
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int ckpt_list_steps(const char *dir, long **steps) {
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0, cap = 16;
    long *s = mt_malloc((size_t)cap * sizeof *s);
    for (struct dirent *e; (e = readdir(d));) {
        long k = step_of(e->d_name);
        if (k < 0)
            continue;
        if (n == cap)
            s = realloc(s, (size_t)(cap *= 2) * sizeof *s);
        CHECK(s, "out of memory");
        s[n++] = k;
    }
    closedir(d);
    qsort(s, (size_t)n, sizeof *s, cmp_long);
    *steps = s;
    return n;
}

uint64_t ckpt_file_bytes(const param_table *t, const ckpt_meta *meta, int n_kinds) {
    uint64_t bytes = 65536 + (meta->config_json ? strlen(meta->config_json) : 0);
    for (int i = 0; i < t->n; i++) {
        size_t n = ckpt_numel(&t->p[i]);
        bytes += (uint64_t)n_kinds * (n * sizeof(float) + 4 * ckpt_crc_blocks(n) + 1024);
    }
    return bytes;
}

static double mb(uint64_t bytes) { return (double)bytes / 1e6; }

int ckpt_check_space(const char *dir, const char *name, uint64_t bytes, mt_err *err) {
    struct statvfs st;
    if (statvfs(dir, &st))
        return 0; /* no answer: the reservation and the writes will tell */
    uint64_t avail = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
    if (avail < bytes)
        return mt_fail(err, "%s: not enough free space for %s: it needs %.1f MB, %.1f MB are free", dir, name,
                       mb(bytes), mb(avail));
    return 0;
}

int ckpt_reserve(const char *path, uint64_t bytes, mt_err *err) {
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return mt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    int rc = fallocate(fd, 0, 0, (off_t)bytes) ? errno : 0;
    close(fd);
    if (rc == ENOSPC || rc == EDQUOT)
        return mt_fail(err, "%s: cannot reserve %.1f MB for the checkpoint: %s", path, mb(bytes),
                       strerror(rc));
    return 0; /* reserved, or a file system without fallocate (EOPNOTSUPP): the writes will tell */
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ckpt_commit(const char *tmp, const char *final, mt_err *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", final);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir] = 0; /* "/x" keeps "/" */
    else
        snprintf(dir, sizeof dir, ".");
    if (fsync_path(tmp, O_RDONLY))
        return mt_fail(err, "%s: fsync failed: %s", tmp, strerror(errno));
    if (rename(tmp, final))
        return mt_fail(err, "%s: cannot rename to %s: %s", tmp, final, strerror(errno));
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY))
        return mt_fail(err, "%s: fsync of the folder failed: %s", dir, strerror(errno));
    return 0;
}

int ckpt_publish(const char *dir, const char *tmp, const char *name, mt_err *err) {
    char final[4096], link_tmp[4096], link[4096];
    snprintf(final, sizeof final, "%s/%s", dir, name);
    snprintf(link_tmp, sizeof link_tmp, "%s/latest.tmp", dir);
    snprintf(link, sizeof link, "%s/latest", dir);
    if (ckpt_commit(tmp, final, err))
        return -1;
    /* The file's rename is durable before `latest` can point at it. */
    if (unlink(link_tmp) && errno != ENOENT)
        return mt_fail(err, "%s: cannot remove: %s", link_tmp, strerror(errno));
    if (symlink(name, link_tmp))
        return mt_fail(err, "%s: cannot create symlink: %s", link_tmp, strerror(errno));
    if (rename(link_tmp, link))
        return mt_fail(err, "%s: cannot rename to %s: %s", link_tmp, link, strerror(errno));
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY))
        return mt_fail(err, "%s: fsync of the folder failed: %s", dir, strerror(errno));
    return 0;
}

void ckpt_prune(const char *dir, long current, int keep_last, int keep_every) {
    long *steps;
    int n = ckpt_list_steps(dir, &steps);
    if (n < 0)
        return;
    if (keep_last < 1)
        keep_last = 1;
    for (int i = 0; i < n - keep_last; i++) {
        if (steps[i] == current || (keep_every > 0 && steps[i] % keep_every == 0))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/step_%ld.h5", dir, steps[i]);
        unlink(path);
    }
    free(steps);
}
