/* bin/generate's side of checkpoints: which file, its model config, and the model loaded from it through
 * ckpt_load (parameters only); an adapter checkpoint with its base. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/h5.h"
#include "train/ckpt.h"
#include "train/ckpt_internal.h"
#include "train/generate.h"

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int gen_find_checkpoint(const char *path, char *file, size_t cap, comm_ctx *comm, mt_err *err) {
    struct stat st;
    if (stat(path, &st))
        return mt_fail(err, "%s: no such checkpoint file or run directory", path);
    if (!S_ISDIR(st.st_mode)) {
        snprintf(file, cap, "%s", path);
        return 0;
    }
    char dir[4200], note[1200];
    snprintf(dir, sizeof dir, "%s/ckpt", path);
    if (!is_dir(dir))
        snprintf(dir, sizeof dir, "%s", path);
    if (ckpt_latest_valid(dir, file, cap, note, sizeof note, comm->comm[COMM_WORLD], err))
        return -1;
    if (note[0] && comm->rank[COMM_WORLD] == 0)
        fprintf(stderr, "generate: %s\n", note);
    return 0;
}

/* The `config` attribute of a meshtrain checkpoint (newly allocated) and its step. */
static char *read_config(const char *file, long *step, mt_err *err) {
    h5_quiet();
    hid_t fapl = h5_fapl(), f = H5Fopen(file, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        mt_fail(err, "%s: cannot open as a checkpoint (not an HDF5 file, or truncated or unreadable)", file);
        return NULL;
    }
    char *format = h5_get_str(f, "format", NULL), *config = NULL;
    long long s = 0;
    if (!format || strcmp(format, CKPT_FORMAT))
        mt_fail(err, "%s: not a meshtrain checkpoint (attribute format != \"%s\")", file, CKPT_FORMAT);
    else if (!(config = h5_get_str(f, "config", NULL)))
        mt_fail(err, "%s: attribute config is missing or not a string", file);
    else if (h5_get_i64(f, "step", &s))
        s = -1;
    *step = (long)s;
    free(format);
    H5Fclose(f);
    return config;
}

int gen_checkpoint_config(const char *file, model_config *cfg, long *step, mt_err *err) {
    char *text = read_config(file, step, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *m = root ? cJSON_GetObjectItemCaseSensitive(root, "model") : NULL;
    int rc = 0;
    if (!cJSON_IsObject(m)) {
        rc = mt_fail(err, "%s: attribute config is not a run config with a \"model\" object", file);
    } else {
        jcfg_src src = {.file = file};
        rc = model_config_parse(&src, "model", m, cfg, err);
    }
    cJSON_Delete(root);
    return rc;
}

int gen_checkpoint_lora(const char *file, const model_config *cfg, const char *base, lora_ckpt_info *info,
                        comm_ctx *comm, mt_err *err) {
    int failed = lora_ckpt_read_info(file, cfg, info, err);
    if (!failed && base && !info->lora.rank)
        failed = mt_fail(err, "--base %s: %s is not a LoRA adapter checkpoint", base, file);
    if (!failed && base)
        snprintf(info->base, sizeof info->base, "%s", base);
    if (!failed && info->lora.rank) {
        param_table t;
        param_table_build(&t, cfg, 1, 0);
        failed = lora_ckpt_check_base(file, info->base_crc, info->base, &t, err);
        param_table_free(&t);
    }
    return comm_agree(comm, failed, err);
}

model *gen_load_model(const char *file, const model_config *cfg, const lora_ckpt_info *lora, ops *o,
                      comm_ctx *comm, mt_err *err) {
    int tp = comm->size[COMM_TP];
    char why[200];
    if (model_tp_problem(cfg, tp, why, sizeof why)) {
        mt_fail(err, "%s: %s (mpirun -n K splits the model over K ranks)", file, why);
        return NULL;
    }
    model_layout L = comm_model_layout(comm);
    model *m = model_create_infer_lora(cfg, &lora->lora, o, 1, cfg->n_ctx, &L);
    ckpt_meta meta = {0};
    if ((lora->lora.rank && ckpt_load_base(lora->base, NULL, m, comm->comm[COMM_WORLD], err)) ||
        ckpt_load(file, &meta, m, NULL, comm->comm[COMM_WORLD], err)) {
        model_free(m);
        return NULL;
    }
    ckpt_meta_free(&meta);
    model_infer_ready(m);
    return m;
}
