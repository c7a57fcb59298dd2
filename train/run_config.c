#define _DEFAULT_SOURCE /* glob */
#include "run_config.h"

#include <glob.h>
#include <limits.h>
#include <libgen.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/backend.h"

static const char *const RUN_KEYS[] = {"model",    "run_dir", "backend", "threads",
                                       "parallel", "data",    "train",   NULL};
static const char *const PARALLEL_KEYS[] = {"tp", "zero", NULL};
static const char *const DATA_KEYS[] = {"train", "val", "kind", "loss_on", "seq_len", "seed", NULL};
static const char *const TRAIN_KEYS[] = {
    "global_batch",  "micro_batch", "steps",        "lr",           "end_lr",    "warmup_steps",
    "anneal_steps",  "schedule",    "weight_decay", "beta1",        "beta2",     "eps",
    "clip",          "z_loss",      "eval_every",   "eval_batches", "log_every", "seed",
    "max_bad_steps", "ckpt_every",  "keep_last",    "keep_every",   "init_from", "recompute", NULL};

static int fail_at(const jcfg_src *src, const char *path, mt_err *err, const char *what) {
    char where[512];
    jcfg_where(src, path, where, sizeof where);
    return mt_fail(err, "%s: %s", where, what);
}

/* A list of shard files or globs (a single string is a list of one); expanded and sorted. */
static int file_list(const jcfg_src *src, const cJSON *data, const char *key, int required, char ***out,
                     int *n, mt_err *err) {
    char path[64];
    snprintf(path, sizeof path, "data.%s", key);
    const cJSON *v = data ? cJSON_GetObjectItemCaseSensitive(data, key) : NULL;
    *out = NULL;
    *n = 0;
    if (!v)
        return required ? fail_at(src, path, err, "missing (required)") : 0;
    int items = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    glob_t g;
    memset(&g, 0, sizeof g);
    for (int i = 0; i < items; i++) {
        const cJSON *e = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, i) : v;
        if (!cJSON_IsString(e)) {
            globfree(&g);
            return fail_at(src, path, err, "must be a file name, a glob, or a list of them");
        }
        int rc = glob(e->valuestring, GLOB_NOCHECK | (i ? GLOB_APPEND : 0), NULL, &g);
        if (rc) {
            globfree(&g);
            return fail_at(src, path, err, "glob failed");
        }
    }
    if (g.gl_pathc == 0) {
        globfree(&g);
        return fail_at(src, path, err, "no files");
    }
    *out = mt_calloc(g.gl_pathc, sizeof **out);
    for (size_t i = 0; i < g.gl_pathc; i++)
        (*out)[i] = mt_strdup(g.gl_pathv[i]);
    *n = (int)g.gl_pathc;
    globfree(&g);
    for (int i = 1; i < *n; i++) /* sorted name order (DESIGN 6); glob sorts each pattern only */
        for (int j = i; j > 0 && strcmp((*out)[j - 1], (*out)[j]) > 0; j--) {
            char *t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    return 0;
}

static int parse_data(run_config *rc, const jcfg_src *src, const cJSON *data, int need_data, mt_err *err) {
    const char *kind = "stream", *loss_on = "mask";
    rc->seq_len = rc->model.n_ctx < 1024 ? rc->model.n_ctx : 1024;
    rc->data_seed = 1234;
    if (jcfg_only_keys(src, "data", data, DATA_KEYS, err) ||
        file_list(src, data, "train", need_data, &rc->train_files, &rc->n_train, err) ||
        file_list(src, data, "val", 0, &rc->val_files, &rc->n_val, err) ||
        jcfg_str(src, "data", data, "kind", 0, &kind, err) ||
        jcfg_str(src, "data", data, "loss_on", 0, &loss_on, err) ||
        jcfg_int(src, "data", data, "seq_len", 0, 1, rc->model.n_ctx, &rc->seq_len, err) ||
        jcfg_long(src, "data", data, "seed", 0, 0, 1L << 62, &rc->data_seed, err))
        return -1;
    if (strcmp(kind, "stream") && strcmp(kind, "examples"))
        return fail_at(src, "data.kind", err, "must be \"stream\" or \"examples\"");
    rc->data_kind = strcmp(kind, "stream") ? LOADER_EXAMPLES : LOADER_STREAM;
    if (strcmp(loss_on, "mask") && strcmp(loss_on, "all"))
        return fail_at(src, "data.loss_on", err, "must be \"mask\" or \"all\"");
    if (!strcmp(loss_on, "all") && rc->data_kind != LOADER_EXAMPLES)
        return fail_at(src, "data.loss_on", err, "\"all\" needs data.kind = \"examples\"");
    rc->train_kind = strcmp(loss_on, "all") ? rc->data_kind : LOADER_EXAMPLES_ALL;
    return 0;
}

/* World = dp x tp (DESIGN 5): tp must divide the world, the heads and d_ff. */
static int parse_parallel(run_config *rc, const jcfg_src *src, const cJSON *par, int world, mt_err *err) {
    rc->tp = 1;
    rc->zero = -1;
    if (jcfg_only_keys(src, "parallel", par, PARALLEL_KEYS, err) ||
        jcfg_int(src, "parallel", par, "tp", 0, 1, 4096, &rc->tp, err) ||
        jcfg_int(src, "parallel", par, "zero", 0, 0, 1, &rc->zero, err))
        return -1;
    char what[200];
    if (world % rc->tp) {
        snprintf(what, sizeof what, "%d does not divide the world size %d", rc->tp, world);
        return fail_at(src, "parallel.tp", err, what);
    }
    if (model_tp_problem(&rc->model, rc->tp, what, sizeof what))
        return fail_at(src, "parallel.tp", err, what);
    rc->dp = world / rc->tp;
    if (rc->zero < 0)
        rc->zero = rc->dp > 1;
    return 0;
}

static int parse_train(run_config *rc, const jcfg_src *src, const cJSON *tr, mt_err *err) {
    optim_config *o = &rc->optim;
    const char *schedule = "cosine";
    rc->micro_batch = 1;
    rc->global_batch = -1;
    rc->steps = 1000;
    o->lr = 6e-4;
    o->end_lr = -1;
    o->warmup_steps = 0;
    o->anneal_steps = -1;
    o->weight_decay = 0.1;
    o->beta1 = 0.9;
    o->beta2 = 0.95;
    o->eps = 1e-8;
    o->clip = 1.0;
    rc->eval_batches = 8;
    rc->log_every = 1;
    rc->seed = 1;
    rc->max_bad_steps = 8;
    rc->keep_last = 3;
    const char *init_from = "";
    if (jcfg_only_keys(src, "train", tr, TRAIN_KEYS, err) ||
        jcfg_int(src, "train", tr, "micro_batch", 0, 1, 1 << 20, &rc->micro_batch, err) ||
        jcfg_int(src, "train", tr, "global_batch", 0, 1, 1 << 30, &rc->global_batch, err) ||
        jcfg_long(src, "train", tr, "steps", 0, 0, 1L << 40, &rc->steps, err) ||
        jcfg_num(src, "train", tr, "lr", 0, 0, 10, &o->lr, err) ||
        jcfg_num(src, "train", tr, "end_lr", 0, 0, 10, &o->end_lr, err) ||
        jcfg_long(src, "train", tr, "warmup_steps", 0, 0, 1L << 40, &o->warmup_steps, err) ||
        jcfg_long(src, "train", tr, "anneal_steps", 0, 0, 1L << 40, &o->anneal_steps, err) ||
        jcfg_str(src, "train", tr, "schedule", 0, &schedule, err) ||
        jcfg_num(src, "train", tr, "weight_decay", 0, 0, 10, &o->weight_decay, err) ||
        jcfg_num(src, "train", tr, "beta1", 0, 0, 0.999999, &o->beta1, err) ||
        jcfg_num(src, "train", tr, "beta2", 0, 0, 0.999999999, &o->beta2, err) ||
        jcfg_num(src, "train", tr, "eps", 0, 1e-30, 1, &o->eps, err) ||
        jcfg_num(src, "train", tr, "clip", 0, 0, 1e30, &o->clip, err) ||
        jcfg_num(src, "train", tr, "z_loss", 0, 0, 1, &rc->z_loss, err) ||
        jcfg_long(src, "train", tr, "eval_every", 0, 0, 1L << 40, &rc->eval_every, err) ||
        jcfg_int(src, "train", tr, "eval_batches", 0, 1, 1 << 20, &rc->eval_batches, err) ||
        jcfg_long(src, "train", tr, "log_every", 0, 1, 1L << 40, &rc->log_every, err) ||
        jcfg_long(src, "train", tr, "seed", 0, 0, 1L << 62, &rc->seed, err) ||
        jcfg_int(src, "train", tr, "max_bad_steps", 0, 1, 1 << 20, &rc->max_bad_steps, err) ||
        jcfg_long(src, "train", tr, "ckpt_every", 0, 0, 1L << 40, &rc->ckpt_every, err) ||
        jcfg_int(src, "train", tr, "keep_last", 0, 1, 1 << 20, &rc->keep_last, err) ||
        jcfg_long(src, "train", tr, "keep_every", 0, 0, 1L << 40, &rc->keep_every, err) ||
        jcfg_str(src, "train", tr, "init_from", 0, &init_from, err) ||
        jcfg_bool(src, "train", tr, "recompute", 0, &rc->recompute, err))
        return -1;
    if (strcmp(schedule, "cosine") && strcmp(schedule, "constant"))
        return fail_at(src, "train.schedule", err, "must be \"cosine\" or \"constant\"");
    o->cosine = strcmp(schedule, "cosine") == 0;
    snprintf(rc->init_from, sizeof rc->init_from, "%s", init_from);
    if (o->end_lr < 0)
        o->end_lr = 0.1 * o->lr;
    if (o->anneal_steps < 0)
        o->anneal_steps = rc->steps > o->warmup_steps ? rc->steps - o->warmup_steps : 0;
    if (rc->global_batch < 0)
        rc->global_batch = rc->micro_batch;
    if (rc->global_batch % (rc->micro_batch * rc->dp)) {
        char what[200];
        snprintf(what, sizeof what, "%d is not a multiple of micro_batch %d x data-parallel size %d",
                 rc->global_batch, rc->micro_batch, rc->dp);
        return fail_at(src, "train.global_batch", err, what);
    }
    rc->accum = rc->global_batch / (rc->micro_batch * rc->dp);
    return 0;
}

/* Replaces a string `model` by the parsed model file (relative to the run config's folder when not
 * found as given). */
static int include_model(cJSON *root, const char *run_path, char *model_path, size_t cap, mt_err *err) {
    cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    model_path[0] = 0;
    if (!cJSON_IsString(m))
        return 0;
    snprintf(model_path, cap, "%s", m->valuestring);
    FILE *f = fopen(model_path, "r");
    if (!f) {
        char *dir = mt_strdup(run_path);
        snprintf(model_path, cap, "%s/%s", dirname(dir), m->valuestring);
        free(dir);
    } else {
        fclose(f);
    }
    cJSON *obj = jcfg_load(model_path, err);
    if (!obj)
        return -1;
    cJSON_ReplaceItemInObjectCaseSensitive(root, "model", obj);
    return 0;
}

/* The run directory gets config.json, the logs and ckpt/: never "" (the current folder's files would mix
 * with them, and "" + "/ckpt" is the root's) nor the root folder itself. */
static int check_run_dir(const jcfg_src *src, const char *run_dir, mt_err *err) {
    char real[PATH_MAX];
    if (!run_dir[0])
        return fail_at(src, "run_dir", err, "must not be empty");
    if (realpath(run_dir, real) && !strcmp(real, "/"))
        return fail_at(src, "run_dir", err, "must not be the root folder");
    return 0;
}

static void fill_resolved(run_config *rc, cJSON *root) {
    cJSON_ReplaceItemInObjectCaseSensitive(root, "model", model_config_to_json(&rc->model));
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "model", cJSON_Duplicate(cJSON_GetObjectItem(root, "model"), 1));
    cJSON_AddStringToObject(r, "run_dir", rc->run_dir);
    cJSON_AddStringToObject(r, "backend", rc->backend);
    cJSON_AddNumberToObject(r, "threads", rc->threads);
    cJSON *par = cJSON_AddObjectToObject(r, "parallel");
    cJSON_AddNumberToObject(par, "tp", rc->tp);
    cJSON_AddNumberToObject(par, "zero", rc->zero);
    cJSON *d = cJSON_AddObjectToObject(r, "data");
    cJSON *tl = cJSON_AddArrayToObject(d, "train"), *vl = cJSON_AddArrayToObject(d, "val");
    for (int i = 0; i < rc->n_train; i++)
        cJSON_AddItemToArray(tl, cJSON_CreateString(rc->train_files[i]));
    for (int i = 0; i < rc->n_val; i++)
        cJSON_AddItemToArray(vl, cJSON_CreateString(rc->val_files[i]));
    cJSON_AddStringToObject(d, "kind", rc->data_kind == LOADER_STREAM ? "stream" : "examples");
    cJSON_AddStringToObject(d, "loss_on", rc->train_kind == LOADER_EXAMPLES_ALL ? "all" : "mask");
    cJSON_AddNumberToObject(d, "seq_len", rc->seq_len);
    cJSON_AddNumberToObject(d, "seed", (double)rc->data_seed);
    cJSON *t = cJSON_AddObjectToObject(r, "train");
    const optim_config *o = &rc->optim;
    cJSON_AddNumberToObject(t, "global_batch", rc->global_batch);
    cJSON_AddNumberToObject(t, "micro_batch", rc->micro_batch);
    cJSON_AddNumberToObject(t, "steps", (double)rc->steps);
    cJSON_AddNumberToObject(t, "lr", o->lr);
    cJSON_AddNumberToObject(t, "end_lr", o->end_lr);
    cJSON_AddNumberToObject(t, "warmup_steps", (double)o->warmup_steps);
    cJSON_AddNumberToObject(t, "anneal_steps", (double)o->anneal_steps);
    cJSON_AddStringToObject(t, "schedule", o->cosine ? "cosine" : "constant");
    cJSON_AddNumberToObject(t, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(t, "beta1", o->beta1);
    cJSON_AddNumberToObject(t, "beta2", o->beta2);
    cJSON_AddNumberToObject(t, "eps", o->eps);
    cJSON_AddNumberToObject(t, "clip", o->clip);
    cJSON_AddNumberToObject(t, "z_loss", rc->z_loss);
    cJSON_AddNumberToObject(t, "eval_every", (double)rc->eval_every);
    cJSON_AddNumberToObject(t, "eval_batches", rc->eval_batches);
    cJSON_AddNumberToObject(t, "log_every", (double)rc->log_every);
    cJSON_AddNumberToObject(t, "seed", (double)rc->seed);
    cJSON_AddNumberToObject(t, "max_bad_steps", rc->max_bad_steps);
    cJSON_AddNumberToObject(t, "ckpt_every", (double)rc->ckpt_every);
    cJSON_AddNumberToObject(t, "keep_last", rc->keep_last);
    cJSON_AddNumberToObject(t, "keep_every", (double)rc->keep_every);
    cJSON_AddStringToObject(t, "init_from", rc->init_from);
    cJSON_AddBoolToObject(t, "recompute", rc->recompute);
    rc->resolved = r;
}

int run_config_load(run_config *rc, const char *path, char *const *sets, int n_sets, int model_only_ok,
                    int world, mt_err *err) {
    memset(rc, 0, sizeof *rc);
    cJSON *root = jcfg_load(path, err);
    if (!root)
        return -1;
    int bare_model = !cJSON_HasObjectItem(root, "model");
    if (bare_model) {
        if (!model_only_ok) {
            cJSON_Delete(root);
            return mt_fail(
                err, "%s: model: missing (required; a bare model config works only with --dry-run)", path);
        }
        cJSON *wrap = cJSON_CreateObject();
        cJSON_AddItemToObject(wrap, "model", root);
        root = wrap;
    }
    char model_path[4096];
    jcfg_src src = {.file = path, .sets = (const char *const *)sets, .n_sets = n_sets};
    int rcode = bare_model ? 0 : include_model(root, path, model_path, sizeof model_path, err);
    if (bare_model)
        src.model_file = path;
    else if (model_path[0])
        src.model_file = model_path;
    for (int i = 0; i < n_sets && !rcode; i++)
        rcode = jcfg_set(root, sets[i], err);
    const cJSON *model = NULL, *data = NULL, *train = NULL, *par = NULL;
    const char *run_dir = NULL, *backend = "cpu";
    rc->threads = omp_get_num_procs();
    if (!rcode)
        rcode = jcfg_only_keys(&src, "", root, RUN_KEYS, err) ||
                jcfg_obj(&src, "", root, "model", 1, &model, err) ||
                model_config_parse(&src, "model", model, &rc->model, err) ||
                jcfg_str(&src, "", root, "run_dir", 0, &run_dir, err) ||
                jcfg_str(&src, "", root, "backend", 0, &backend, err) ||
                jcfg_int(&src, "", root, "threads", 0, 1, 4096, &rc->threads, err) ||
                jcfg_obj(&src, "", root, "parallel", 0, &par, err) ||
                parse_parallel(rc, &src, par, world, err) ||
                jcfg_obj(&src, "", root, "data", !model_only_ok, &data, err) ||
                jcfg_obj(&src, "", root, "train", 0, &train, err) ||
                parse_data(rc, &src, data, !model_only_ok, err) || parse_train(rc, &src, train, err);
    if (!rcode && strcmp(backend, "cpu") && strcmp(backend, "cuda") && strcmp(backend, "auto"))
        rcode = fail_at(&src, "backend", err, "must be \"cpu\", \"cuda\" or \"auto\"");
    if (!rcode && !strcmp(backend, "cuda") && !backend_has_cuda())
        rcode = fail_at(&src, "backend", err, "this build has no CUDA backend (build it with make CUDA=1)");
    if (!rcode)
        snprintf(rc->backend, sizeof rc->backend, "%s", backend);
    if (!rcode) {
        if (run_dir) {
            snprintf(rc->run_dir, sizeof rc->run_dir, "%s", run_dir);
        } else {
            char *base = mt_strdup(path), *b = basename(base), *dot = strrchr(b, '.');
            if (dot)
                *dot = 0;
            snprintf(rc->run_dir, sizeof rc->run_dir, "runs/%s", b);
            free(base);
        }
        rcode = check_run_dir(&src, rc->run_dir, err);
    }
    if (!rcode)
        fill_resolved(rc, root);
    cJSON_Delete(root);
    if (rcode)
        run_config_free(rc);
    return rcode ? -1 : 0;
}

void run_config_free(run_config *rc) {
    for (int i = 0; i < rc->n_train; i++)
        free(rc->train_files[i]);
    for (int i = 0; i < rc->n_val; i++)
        free(rc->val_files[i]);
    free(rc->train_files);
    free(rc->val_files);
    cJSON_Delete(rc->resolved);
    memset(rc, 0, sizeof *rc);
}
