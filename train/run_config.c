#define _DEFAULT_SOURCE /* realpath */
#include "train/run_config.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/backend.h"

/* ------------------------------------------------------------------------ defaults computed after parsing */

static void run_dir_default(void *base, const jcfg_src *src) {
    run_config *rc = base;
    char *name = mt_strdup(src->file), *b = basename(name), *dot = strrchr(b, '.');
    if (dot)
        *dot = 0;
    snprintf(rc->run_dir, sizeof rc->run_dir, "runs/%s", b);
    free(name);
}

static void threads_default(void *base, const jcfg_src *src) {
    (void)src;
    ((run_config *)base)->threads = omp_get_num_procs();
}

static void zero_default(void *base, const jcfg_src *src) {
    (void)src;
    run_config *rc = base;
    rc->zero = rc->world / rc->tp > 1;
}

static void seq_len_default(void *base, const jcfg_src *src) {
    (void)src;
    run_config *rc = base;
    rc->seq_len = rc->model.n_ctx < 1024 ? rc->model.n_ctx : 1024;
}

static void global_batch_default(void *base, const jcfg_src *src) {
    (void)src;
    run_config *rc = base;
    rc->global_batch = rc->micro_batch;
}

static void end_lr_default(void *base, const jcfg_src *src) {
    (void)src;
    optim_config *o = &((run_config *)base)->optim;
    o->end_lr = 0.1 * o->lr;
}

static void lora_alpha_default(void *base, const jcfg_src *src) {
    (void)src;
    lora_config *lc = &((run_config *)base)->lora;
    lc->alpha = lc->rank;
}

static void anneal_steps_default(void *base, const jcfg_src *src) {
    (void)src;
    run_config *rc = base;
    optim_config *o = &rc->optim;
    o->anneal_steps = rc->steps > o->warmup_steps ? rc->steps - o->warmup_steps : 0;
}

/* ------------------------------------------------------------------------------------------ the keys */

/* `model` is a model config object by the time the table sees it (include_model reads a named file). */
static int parse_model(const jcfg_src *src, const char *path, const cJSON *v, void *field, mt_err *err) {
    return jcfg_obj_at(src, path, v, err) || model_config_parse(src, path, v, field, err) ? -1 : 0;
}

static cJSON *model_json(const void *field) { return model_config_to_json(field); }

static const jcfg_custom MODEL = {parse_model, model_json, "model config file name, or object"};

#define RC(member) JCFG_FIELD(run_config, member)

/* train.lora.targets: a list of layer names, kept as a bit set. */
static int parse_targets(const jcfg_src *src, const char *path, const cJSON *v, void *field, mt_err *err) {
    unsigned *targets = field;
    *targets = 0;
    if (!cJSON_IsArray(v))
        return jcfg_fail(src, path, err, "must be a list of q_proj, k_proj, v_proj, out_proj, fc_in, fc_out");
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        int t = cJSON_IsString(e) ? lora_target_find(e->valuestring) : -1;
        if (t < 0)
            return jcfg_fail(src, path, err,
                             "unknown target %.64s (one of q_proj, k_proj, v_proj, out_proj, "
                             "fc_in, fc_out)",
                             cJSON_IsString(e) ? e->valuestring : "(not a string)");
        *targets |= 1u << t;
    }
    return 0;
}

static cJSON *targets_json(const void *field) {
    unsigned targets = *(const unsigned *)field;
    cJSON *list = cJSON_CreateArray();
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (targets >> t & 1)
            cJSON_AddItemToArray(list, cJSON_CreateString(LORA_TARGET_NAMES[t]));
    return list;
}

static const jcfg_custom TARGETS = {parse_targets, targets_json, "list of layer names"};

#define LC(member) JCFG_FIELD(lora_config, member)

static const jcfg_key LORA_KEYS[] = {
    {"rank", JCFG_INT, LC(rank), .lo = 1, .hi = 1 << 20,
     .help = "LoRA on the frozen `init_from` model (see \"LoRA\"): adapter rank, up to the smaller side of "
             "every target layer; absent: no LoRA, every parameter is trained"},
    {"alpha", JCFG_NUM, LC(alpha), .computed = "rank", .compute = lora_alpha_default, .lo = 0, .hi = 1e6,
     .help = "the adapters' update is scaled by alpha / rank"},
    {"targets", JCFG_CUSTOM, LC(targets), .def = "[\"q_proj\", \"v_proj\"]", .custom = &TARGETS,
     .help = "adapted in every layer: any of `q_proj`, `k_proj`, `v_proj`, `out_proj`, `fc_in`, `fc_out`"},
    {"dropout", JCFG_NUM, LC(dropout), .def = "0", .lo = 0, .hi = 0.999,
     .help = "probability of zeroing an element of an adapter's input in training"},
    {NULL}};

static const jcfg_key PARALLEL_KEYS[] = {
    {"tp", JCFG_INT, RC(tp), .def = "1", .lo = 1, .hi = 4096,
     .help = "tensor-parallel size; dp = world size / tp; tp must divide the world, the heads and d_ff"},
    {"zero", JCFG_INT, RC(zero), .computed = "1 when dp > 1, else 0", .compute = zero_default, .lo = 0,
     .hi = 1, .help = "ZeRO-1: each data-parallel rank keeps Adam state for 1/dp of the parameters"},
    {NULL}};

static const jcfg_choice DATA_KINDS[] = {{"stream", LOADER_STREAM}, {"examples", LOADER_EXAMPLES}, {NULL}};

static const jcfg_choice LOSS_ON[] = {{"mask", 0}, {"all", 1}, {NULL}};

static const jcfg_key DATA_KEYS[] = {
    {"train", JCFG_FILES, RC(train_files), JCFG_NEEDED_TO_TRAIN,
     .help = "token shard files or globs, taken in sorted name order (not needed by --dry-run)"},
    {"val", JCFG_FILES, RC(val_files), .help = "validation shards, as `data.train`"},
    {"kind", JCFG_ENUM, RC(data_kind), .def = "stream", .choices = DATA_KINDS,
     .help =
         "`stream`: pretraining windows of `seq_len + 1` tokens; `examples`: one padded example per sequence "
         "with its loss weights (fine-tuning, from `bin/prepare alpaca`)"},
    {"loss_on", JCFG_ENUM, RC(loss_all), .def = "mask", .choices = LOSS_ON,
     .help = "`mask`: the loss counts the response tokens only (Alpaca's train.py; `examples` data); `all`: "
             "every token of each example (needs `examples`). Validation always counts the mask"},
    {"seq_len", JCFG_INT, RC(seq_len), .computed = "min(n_ctx, 1024)", .compute = seq_len_default, .lo = 1,
     .hi = 1 << 20, .help = "sequence length T, at most `model.n_ctx`"},
    {"seed", JCFG_LONG, RC(data_seed), .def = "1234", .lo = 0, .hi = 1L << 62, .help = "data order seed"},
    {NULL}};

static const jcfg_choice SCHEDULES[] = {{"cosine", 1}, {"constant", 0}, {NULL}};

static const jcfg_key TRAIN_KEYS[] = {
    {"global_batch", JCFG_INT, RC(global_batch), .computed = "micro_batch", .compute = global_batch_default,
     .lo = 1, .hi = 1 << 30,
     .help =
         "sequences per optimizer step, a multiple of micro_batch x dp (the rest is gradient accumulation)"},
    {"micro_batch", JCFG_INT, RC(micro_batch), .def = "1", .lo = 1, .hi = 1 << 20,
     .help = "sequences per rank per forward/backward"},
    {"steps", JCFG_LONG, RC(steps), .def = "1000", .lo = 0, .hi = 1L << 40, .help = "optimizer steps"},
    {"lr", JCFG_NUM, RC(optim.lr), .def = "6e-4", .lo = 0, .hi = 10, .help = "peak learning rate"},
    {"end_lr", JCFG_NUM, RC(optim.end_lr), .computed = "0.1 x lr", .compute = end_lr_default, .lo = 0,
     .hi = 10, .help = "learning rate after the cosine"},
    {"warmup_steps", JCFG_LONG, RC(optim.warmup_steps), .def = "0", .lo = 0, .hi = 1L << 40,
     .help = "linear warmup from 0 to lr (cosine schedule)"},
    {"anneal_steps", JCFG_LONG, RC(optim.anneal_steps), .computed = "steps - warmup_steps (at least 0)",
     .compute = anneal_steps_default, .lo = 0, .hi = 1L << 40,
     .help = "length of the cosine from lr to end_lr, after the warmup"},
    {"schedule", JCFG_ENUM, RC(optim.cosine), .def = "cosine", .choices = SCHEDULES,
     .help = "`cosine`: linear warmup, cosine from lr to end_lr, then end_lr; `constant`: lr at every step"},
    {"weight_decay", JCFG_NUM, RC(optim.weight_decay), .def = "0.1", .lo = 0, .hi = 10,
     .help = "decoupled, on tensors of 2+ dimensions only"},
    {"beta1", JCFG_NUM, RC(optim.beta1), .def = "0.9", .lo = 0, .hi = 0.999999,
     .help = "Adam first moment decay"},
    {"beta2", JCFG_NUM, RC(optim.beta2), .def = "0.95", .lo = 0, .hi = 0.999999999,
     .help = "Adam second moment decay"},
    {"eps", JCFG_NUM, RC(optim.eps), .def = "1e-8", .lo = 1e-30, .hi = 1, .help = "Adam epsilon"},
    {"clip", JCFG_NUM, RC(optim.clip), .def = "1.0", .lo = 0, .hi = 1e30,
     .help = "global gradient-norm clip (0 = off)"},
    {"z_loss", JCFG_NUM, RC(z_loss), .def = "0", .lo = 0, .hi = 1,
     .help = "adds z·logsumexp² per counted token"},
    {"eval_every", JCFG_LONG, RC(eval_every), .def = "0", .lo = 0, .hi = 1L << 40,
     .help = "validation every this many steps (0: off)"},
    {"eval_batches", JCFG_INT, RC(eval_batches), .def = "8", .lo = 1, .hi = 1 << 20,
     .help = "micro-batches of `data.val` per validation"},
    {"log_every", JCFG_LONG, RC(log_every), .def = "1", .lo = 1, .hi = 1L << 40,
     .help = "a step line on stdout every this many steps"},
    {"seed", JCFG_LONG, RC(seed), .def = "1", .lo = 0, .hi = 1L << 62,
     .help = "parameter initialization seed"},
    {"max_bad_steps", JCFG_INT, RC(max_bad_steps), .def = "8", .lo = 1, .hi = 1 << 20,
     .help = "stop after this many non-finite steps in a row (their updates are skipped)"},
    {"ckpt_every", JCFG_LONG, RC(ckpt_every), .def = "0", .lo = 0, .hi = 1L << 40,
     .help = "checkpoint cadence in steps (0: only at the end and on a stop signal)"},
    {"keep_last", JCFG_INT, RC(keep_last), .def = "3", .lo = 1, .hi = 1 << 20,
     .help = "keep the newest this many checkpoints"},
    {"keep_every", JCFG_LONG, RC(keep_every), .def = "0", .lo = 0, .hi = 1L << 40,
     .help = "also keep the checkpoints of every this many steps (0: none)"},
    {"init_from", JCFG_STR, RC(init_from),
     .help = "take parameters only from this checkpoint (fresh optimizer, step 0): fine-tuning"},
    {"lora", JCFG_SECTION, RC(lora), .keys = LORA_KEYS},
    {"recompute", JCFG_BOOL, RC(recompute), .def = "false",
     .help =
         "keep one layer's activations and rerun each layer's forward in the backward: activation memory of "
         "one layer instead of all, about a third more compute, bit-identical results"},
    {NULL}};

/* A JCFG_STR keeps the name itself; the values are unused. */
static const jcfg_choice BACKENDS[] = {{"cpu", 0}, {"cuda", 1}, {"auto", 2}, {NULL}};

const jcfg_key run_config_keys[] = {
    {"model", JCFG_CUSTOM, RC(model), JCFG_REQUIRED, .custom = &MODEL,
     .help =
         "path of a model config (configs/models/*.json; relative to this file if not found as given), or "
         "an inline object"},
    {"run_dir", JCFG_STR, RC(run_dir), .computed = "runs/NAME for a config NAME.json",
     .compute = run_dir_default,
     .help = "where `config.json` (resolved), `metrics.jsonl`, `train.log` and `ckpt/` go"},
    {"backend", JCFG_STR, RC(backend), .def = "cpu", .choices = BACKENDS,
     .help = "one GPU per rank, by local rank (cuda needs `make CUDA=1`); auto: cuda when a usable GPU is "
             "there, else cpu with a warning"},
    {"threads", JCFG_INT, RC(threads), .computed = "all cores", .compute = threads_default, .lo = 1,
     .hi = 4096, .help = "CPU threads per rank (OpenMP and OpenBLAS)"},
    {"parallel", JCFG_SECTION, 0, 0, .keys = PARALLEL_KEYS},
    {"data", JCFG_SECTION, 0, 0, JCFG_NEEDED_TO_TRAIN, .keys = DATA_KEYS},
    {"train", JCFG_SECTION, 0, 0, .keys = TRAIN_KEYS},
    {NULL}};

/* ---------------------------------------------------------------------------------- cross-key rules */

/* World = dp x tp (DESIGN 5): tp must divide the world, the heads and d_ff. */
static int check_world(run_config *rc, const jcfg_src *src, mt_err *err) {
    char what[200];
    if (rc->world % rc->tp)
        return jcfg_fail(src, "parallel.tp", err, "%d does not divide the world size %d", rc->tp, rc->world);
    if (model_tp_problem(&rc->model, rc->tp, what, sizeof what))
        return jcfg_fail(src, "parallel.tp", err, "%s", what);
    rc->dp = rc->world / rc->tp;
    return 0;
}

/* data.loss_on = "all" applies to fine-tuning examples only; validation keeps the mask. */
static int check_loss_on(run_config *rc, const jcfg_src *src, mt_err *err) {
    if (rc->loss_all && rc->data_kind != LOADER_EXAMPLES)
        return jcfg_fail(src, "data.loss_on", err, "\"all\" needs data.kind = \"examples\"");
    rc->train_kind = rc->loss_all ? LOADER_EXAMPLES_ALL : rc->data_kind;
    return 0;
}

static int check_batch(run_config *rc, const jcfg_src *src, mt_err *err) {
    if (rc->seq_len > rc->model.n_ctx)
        return jcfg_fail(src, "data.seq_len", err, "%d is outside [1, %d]", rc->seq_len, rc->model.n_ctx);
    if (rc->global_batch % (rc->micro_batch * rc->dp))
        return jcfg_fail(src, "train.global_batch", err,
                         "%d is not a multiple of micro_batch %d x data-parallel size %d", rc->global_batch,
                         rc->micro_batch, rc->dp);
    rc->accum = rc->global_batch / (rc->micro_batch * rc->dp);
    return 0;
}

/* LoRA adapts a trained model: its ranks fit every target layer, and it needs train.init_from. */
static int check_lora(const run_config *rc, const jcfg_src *src, mt_err *err) {
    char why[200];
    if (!rc->lora.rank)
        return 0;
    if (lora_problem(&rc->model, &rc->lora, why, sizeof why))
        return jcfg_fail(src, "train.lora", err, "%s", why);
    if (!rc->init_from[0])
        return jcfg_fail(src, "train.lora", err,
                         "needs train.init_from: the checkpoint of the base model to adapt");
    return 0;
}

/* train.lora alone, parsed by its table in a run config (whose computed defaults read the run config). */
static const jcfg_key LORA_ONLY[] = {{"lora", JCFG_SECTION, RC(lora), .keys = LORA_KEYS}, {NULL}};

int run_config_parse_lora(const jcfg_src *src, const model_config *mc, const cJSON *lo, lora_config *lc,
                          mt_err *err) {
    char why[200];
    cJSON *train = cJSON_CreateObject();
    if (lo && !cJSON_IsNull(lo))
        cJSON_AddItemReferenceToObject(train, "lora", (cJSON *)lo);
    run_config *rc = mt_calloc(1, sizeof *rc);
    int bad = jcfg_parse(src, "train", train, LORA_ONLY, rc, err);
    *lc = rc->lora;
    free(rc);
    cJSON_Delete(train);
    if (!bad && lc->rank && lora_problem(mc, lc, why, sizeof why))
        bad = jcfg_fail(src, "train.lora", err, "%s", why);
    return bad ? -1 : 0;
}

/* Replaces a string `model` by the parsed model file: an absolute path as it is, a relative one as given
 * when it exists there, else relative to the run config's folder. */
static int include_model(cJSON *root, const jcfg_src *src, char *model_path, size_t cap, mt_err *err) {
    cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    model_path[0] = 0;
    if (!cJSON_IsString(m))
        return 0;
    char clip[MT_CLIP_CAP];
    if (!m->valuestring[0] || strlen(m->valuestring) >= cap)
        return jcfg_fail(src, "model", err, "%s",
                         m->valuestring[0] ? "the path is too long" : "must not be empty");
    snprintf(model_path, cap, "%s", m->valuestring);
    if (m->valuestring[0] != '/' && access(model_path, F_OK)) {
        char *dir = mt_strdup(src->file);
        snprintf(model_path, cap, "%s/%s", dirname(dir), m->valuestring);
        free(dir);
        if (access(model_path, F_OK))
            snprintf(model_path, cap, "%s", m->valuestring);
    }
    if (access(model_path, F_OK))
        return jcfg_fail(src, "model", err, "cannot open model config %s: %s", mt_clip(model_path, clip),
                         strerror(errno));
    cJSON *obj = jcfg_load(model_path, err);
    if (!obj)
        return -1;
    cJSON_ReplaceItemInObjectCaseSensitive(root, "model", obj);
    return 0;
}

/* The --set assignments of `model` itself (a path or an object) apply before the model file is included,
 * the others (model.n_layer=...) after it. */
static int apply_sets(cJSON *root, const jcfg_src *src, int model_itself, mt_err *err) {
    for (int i = 0; i < src->n_sets; i++)
        if ((strncmp(src->sets[i], "model=", 6) == 0) == model_itself && jcfg_set(root, src->sets[i], err))
            return -1;
    return 0;
}

/* The run directory gets config.json, the logs and ckpt/: never "" (the current folder's files would mix
 * with them, and "" + "/ckpt" is the root's) nor the root folder itself. */
static int check_run_dir(const jcfg_src *src, const char *run_dir, mt_err *err) {
    char real[PATH_MAX];
    if (!run_dir[0])
        return jcfg_fail(src, "run_dir", err, "must not be empty");
    if (realpath(run_dir, real) && !strcmp(real, "/"))
        return jcfg_fail(src, "run_dir", err, "must not be the root folder");
    return 0;
}

static int check_backend(const jcfg_src *src, const char *backend, mt_err *err) {
    if (!strcmp(backend, "cuda") && !backend_has_cuda())
        return jcfg_fail(src, "backend", err, "this build has no CUDA backend (build it with make CUDA=1)");
    return 0;
}

/* The config tree: PATH (a bare model config wrapped as {"model": ...} when model_only_ok), with a named
 * model file included and the --set assignments applied; src says where each part came from. */
static cJSON *load_tree(jcfg_src *src, int model_only_ok, char *model_path, size_t cap, mt_err *err) {
    cJSON *root = jcfg_load(src->file, err);
    if (!root)
        return NULL;
    int bare_model = !cJSON_HasObjectItem(root, "model");
    if (bare_model && !model_only_ok) {
        cJSON_Delete(root);
        mt_fail(err, "%s: model: missing (required; a bare model config works only with --dry-run)",
                src->file);
        return NULL;
    }
    if (bare_model) {
        cJSON *wrap = cJSON_CreateObject();
        cJSON_AddItemToObject(wrap, "model", root);
        root = wrap;
    }
    if (apply_sets(root, src, 1, err) || include_model(root, src, model_path, cap, err)) {
        cJSON_Delete(root);
        return NULL;
    }
    if (model_path[0])
        src->model_file = model_path;
    else if (bare_model)
        src->model_file = src->file;
    if (apply_sets(root, src, 0, err)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int run_config_load(run_config *rc, const char *path, char *const *sets, int n_sets, int model_only_ok,
                    int world, mt_err *err) {
    memset(rc, 0, sizeof *rc);
    char model_path[4096];
    jcfg_src src = {
        .file = path, .sets = (const char *const *)sets, .n_sets = n_sets, .dry_run = model_only_ok};
    cJSON *root = load_tree(&src, model_only_ok, model_path, sizeof model_path, err);
    if (!root)
        return -1;
    rc->world = world;
    int bad = jcfg_parse(&src, "", root, run_config_keys, rc, err) || check_world(rc, &src, err) ||
              check_loss_on(rc, &src, err) || check_batch(rc, &src, err) ||
              check_backend(&src, rc->backend, err) || check_run_dir(&src, rc->run_dir, err) ||
              check_lora(rc, &src, err);
    cJSON_Delete(root);
    if (bad) {
        run_config_free(rc);
        return -1;
    }
    rc->resolved = jcfg_to_json(run_config_keys, rc);
    return 0;
}

void run_config_free(run_config *rc) {
    jcfg_free(run_config_keys, rc);
    cJSON_Delete(rc->resolved);
    memset(rc, 0, sizeof *rc);
}
