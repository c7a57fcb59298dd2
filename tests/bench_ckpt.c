/* Checkpoint throughput (DESIGN 10): write and read GB/s of a gpt2-124m checkpoint with optimizer state,
 * next to a raw sequential write()+fsync and read() of the same size on the same disk, in one run. Reads
 * are cold: the files' pages are dropped (posix_fadvise) first. Usage: bench_ckpt [DIR] (default /tmp). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/h5.h"
#include "tests/test_model.h"
#include "train/ckpt.h"

static void drop_cache(const char *path) {
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "open %s", path);
    CHECK(fdatasync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0, "fadvise %s", path);
    close(fd);
}

/* Seconds to write `bytes` with write() in 4 MiB pieces and fsync. */
static double raw_write(const char *path, size_t bytes) {
    size_t piece = (size_t)4 << 20;
    char *buf = mt_malloc(piece);
    for (size_t i = 0; i < piece; i++)
        buf[i] = (char)(i * 2654435761u >> 24);
    double t0 = mt_now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "create %s", path);
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < piece ? bytes - done : piece;
        CHECK(write(fd, buf, n) == (ssize_t)n, "write %s", path);
        done += n;
    }
    CHECK(fsync(fd) == 0, "fsync");
    close(fd);
    double s = mt_now() - t0;
    free(buf);
    return s;
}

static double raw_read(const char *path) {
    size_t piece = (size_t)4 << 20;
    char *buf = mt_malloc(piece);
    double t0 = mt_now();
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "open %s", path);
    while (read(fd, buf, piece) > 0) {
    }
    close(fd);
    free(buf);
    return mt_now() - t0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const char *base = argc > 1 ? argv[1] : "/tmp";
    char dir[4096], path[4200], raw[4200];
    snprintf(dir, sizeof dir, "%s/mt_bench_ckpt_%d", base, (int)getpid());
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    mt_err err;
    model_config cfg = tu_model_config("configs/models/gpt2-124m.json");
    tu_trainee t = tu_trainee_make(&cfg, 2, 1, 8);
    model *m = t.m;
    optim_state *opt = &t.opt;
    model_init_params(m, 1);
    float *mh = m->o->host_ptr(m->o, (ops_ptr){opt->m, 0}), *vh = m->o->host_ptr(m->o, (ops_ptr){opt->v, 0});
    for (size_t i = 0; i < opt->hi - opt->lo; i++) {
        mh[i] = (float)((double)(i % 1000) * 1e-6);
        vh[i] = (float)((double)(i % 777) * 1e-9);
    }
    ckpt_meta meta = {.step = 1, .world_dp = 1, .world_tp = 1, .threads = 2, .config_json = "{}"};

    double t0 = mt_now();
    CHECK(!ckpt_save(dir, &meta, m, opt, 2, 0, MPI_COMM_SELF, &err), "%s", err.msg);
    double ckpt_w = mt_now() - t0;
    snprintf(path, sizeof path, "%s/step_1.h5", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0, "stat");
    size_t bytes = (size_t)st.st_size;
    snprintf(raw, sizeof raw, "%s/raw.bin", dir);
    double raw_w = raw_write(raw, bytes);

    drop_cache(path);
    t0 = mt_now();
    CHECK(!ckpt_load(path, NULL, m, opt, MPI_COMM_SELF, &err), "%s", err.msg);
    double ckpt_r = mt_now() - t0;
    drop_cache(raw);
    double raw_r = raw_read(raw);

    double gb = (double)bytes / 1e9;
    printf("checkpoint gpt2-124m + Adam state: %.2f GB\n", gb);
    printf("  write: checkpoint %.2f GB/s, raw write+fsync %.2f GB/s, ratio %.2f\n", gb / ckpt_w, gb / raw_w,
           raw_w / ckpt_w);
    printf("  read (cold, verified): checkpoint %.2f GB/s, raw read %.2f GB/s, ratio %.2f\n", gb / ckpt_r,
           gb / raw_r, raw_r / ckpt_r);
    unlink(raw);
    unlink(path);
    snprintf(raw, sizeof raw, "%s/latest", dir);
    unlink(raw);
    rmdir(dir);
    tu_trainee_drop(&t);
    MPI_Finalize();
    return 0;
}
