#define _POSIX_C_SOURCE 200809L
#include "train/preflight.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model.h"
#include "model/ops_sizer.h"
#include "parallel/coll.h"
#include "train/optim.h"

static double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

/* The first number of the first line of `path` that starts with `key` (or of the whole file when key is
 * ""), times `scale`; -1 when there is none ("max" in a cgroup file is no limit). */
static double read_number(const char *path, const char *key, double scale) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    double v = -1;
    while (v < 0 && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)) && sscanf(line + strlen(key), "%lf", &v) != 1)
            v = -1;
    fclose(f);
    return v < 0 ? -1 : v * scale;
}

/* Bytes this machine can still give a process: MemAvailable, or less under a cgroup (v2) memory limit. */
static double memory_available(void) {
    double avail = read_number("/proc/meminfo", "MemAvailable:", 1024);
    char cg[512] = "", path[700];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        if (!fgets(cg, sizeof cg, f) || strncmp(cg, "0::", 3))
            cg[0] = 0;
        fclose(f);
    }
    if (cg[0]) {
        cg[strcspn(cg, "\n")] = 0;
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", cg + 3);
        double max = read_number(path, "", 1);
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.current", cg + 3);
        double cur = read_number(path, "", 1);
        if (max > 0 && cur >= 0 && (avail < 0 || max - cur < avail))
            avail = max - cur;
    }
    return avail;
}

/* Model (parameters, working copy, gradients, activations) and optimizer state of this rank. */
static size_t rank_bytes(const run_config *rc, ops *o, comm_ctx *c) {
    ops *sizer = ops_sizer_create(o->act_dtype);
    model_layout L = comm_model_layout(c);
    model *m =
        model_create_lora(&rc->model, &rc->lora, sizer, rc->micro_batch, rc->seq_len, &L, rc->recompute);
    optim_state opt;
    optim_state_init(&opt, m, c, rc->zero);
    size_t bytes = ops_sizer_bytes(sizer);
    optim_state_free(&opt, m);
    model_free(m);
    sizer->destroy(sizer);
    return bytes;
}

int preflight_memory(const run_config *rc, ops *o, comm_ctx *c, mt_err *err) {
    if (strcmp(o->name, "cpu"))
        return 0; /* device memory: the backend reports a failed allocation itself */
    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(c->comm[COMM_WORLD], MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    int local, ranks;
    MPI_Comm_rank(node, &local);
    MPI_Comm_size(node, &ranks);
    double avail = local == 0 ? memory_available() : 0; /* read once, before any rank allocates */
    coll_bcast(node, &avail, 1, MPI_DOUBLE, 0, "the broadcast of free memory");
    MPI_Comm_free(&node);
    double need = (double)rank_bytes(rc, o, c);
    if (avail < 0 || need * ranks <= avail)
        return 0;
    return mt_fail(
        err,
        "model %s needs %.2f GiB per rank for parameters, gradients, optimizer state and activations "
        "(micro_batch %d x seq_len %d) x %d rank%s on this node, but %.2f GiB is available: use "
        "train.recompute, a smaller micro_batch or seq_len, or more nodes",
        rc->model.name, gib(need), rc->micro_batch, rc->seq_len, ranks, ranks > 1 ? "s" : "", gib(avail));
}

/* Shards (train first, then val) with index % size == rank are this rank's to check. */
static int check_share(loader *l, int eot_token, int *index, int rank, int size, mt_err *err) {
    for (int s = 0; l && s < l->n_shards; s++, (*index)++)
        if (*index % size == rank && loader_check_shard(l, s, eot_token, err))
            return -1;
    return 0;
}

int preflight_data(loader *train, loader *val, int eot_token, comm_ctx *c, mt_err *err) {
    int rank = c->rank[COMM_WORLD], size = c->size[COMM_WORLD], index = 0;
    int failed = check_share(train, eot_token, &index, rank, size, err) ||
                 check_share(val, eot_token, &index, rank, size, err);
    return comm_agree(c, failed, err);
}

int preflight_ckpt_dir(const char *ckpt_dir, mt_err *err) {
    char latest[4300];
    snprintf(latest, sizeof latest, "%s/latest", ckpt_dir);
    struct stat st;
    if (lstat(latest, &st) == 0 && !S_ISLNK(st.st_mode))
        return mt_fail(err, "%s is not a symbolic link to a checkpoint (a %s): move it away", latest,
                       S_ISDIR(st.st_mode) ? "folder" : "file");
    return 0;
}
