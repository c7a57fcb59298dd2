#define _POSIX_C_SOURCE 200809L
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/signals.h"
#include "data/loader.h"
#include "model/backend.h"
#include "model/model.h"
#include "model/ops_rate.h"
#include "model/ops_sizer.h"
#include "parallel/comm_backend.h"
#include "train/ckpt.h"
#include "train/config_diff.h"
#include "train/lora_ckpt.h"
#include "train/metrics.h"
#include "train/preflight.h"
#include "train/step.h"

static double gib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }

void trainer_dry_run(const run_config *rc) {
    char *json = cJSON_Print(rc->resolved);
    printf("%s\n", json);
    free(json);
    /* The CUDA backend keeps activations and a working copy of the weights in bf16. */
    ops *sizer = ops_sizer_create(strcmp(rc->backend, "cuda") ? OPS_F32 : OPS_BF16);
    model *m =
        model_create_lora(&rc->model, &rc->lora, sizer, rc->micro_batch, rc->seq_len, NULL, rc->recompute);
    param_set trainable = model_trainable(m);
    /* Under LoRA the weights are the frozen base and the adapters, and only the adapters have gradients
     * and Adam moments. */
    size_t n_weights = m->table.total + (m->lora ? m->lora->table.total : 0);
    size_t weights = n_weights * sizeof(float), grads = trainable.table->total * sizeof(float);
    size_t work = m->work != m->params ? n_weights * 2 : 0;
    size_t total = ops_sizer_bytes(sizer);
    printf("params: %ld\n", param_count(&m->table));
    if (m->lora)
        printf("trainable params: %ld (LoRA adapters, rank %d, alpha %g)\n", param_count(trainable.table),
               rc->lora.rank, rc->lora.alpha);
    printf("memory per rank (GiB, backend %s): weights %.3f, grads %.3f, optimizer %.3f, bf16 weights %.3f, "
           "activations %.3f, total %.3f\n",
           rc->backend, gib(weights), gib(grads), gib(2 * grads), gib(work),
           gib(total - weights - grads - work), gib(total + 2 * grads));
    printf("model FLOPs per token: %.4g\n", model_flops_per_token(&m->cfg, &m->table, rc->seq_len));
    model_free(m);
    sizer->destroy(sizer);
}

static int write_config(const run_config *rc, mt_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", rc->run_dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return mt_fail(err, "%s: cannot write: %s", path, strerror(errno));
    char *json = cJSON_Print(rc->resolved);
    fprintf(f, "%s\n", json);
    free(json);
    return fclose(f) ? mt_fail(err, "%s: write failed", path) : 0;
}

typedef struct {
    const run_config *rc;
    const trainer_options *opt_cli;
    char ckpt_dir[4200];
    long step, tokens_seen; /* optimizer steps done; tokens trained on */
    long saved_step;        /* step of the newest checkpoint written or resumed from; -1 when none */
    comm_ctx comm;
    int dp_rank, dp;
    model *m;
    optim_state opt;
    loader train, val;
    int has_val;
    int loaded;      /* parameters come from a checkpoint (resume or init_from) */
    int32_t *tokens; /* this rank's sequences of one step: accum x micro_batch */
    float *weights;
    metrics log;
    double sgemm_gflops, flops_per_token, head_flops; /* head_flops: per counted row */
    uint32_t base_id; /* LoRA: ckpt_params_identity of the frozen base (train.init_from) */
} trainer;

/* The validation sequences an evaluation uses: the first eval_batches x micro_batch, each once (fewer when
 * data.val has fewer). */
static long eval_sequences(const trainer *t) {
    long want = (long)t->rc->eval_batches * t->rc->micro_batch;
    return want < t->val.n_seq ? want : t->val.n_seq;
}

/* Token-weighted mean loss over the eval_sequences of the validation set in micro-batches dealt out over
 * the data-parallel ranks. Collective: every rank returns the same result. */
static int evaluate(trainer *t, double *loss, mt_err *err) {
    const run_config *rc = t->rc;
    double sums[2] = {0, 0};
    int failed = 0;
    long used = eval_sequences(t), batches = (used + rc->micro_batch - 1) / rc->micro_batch;
    for (long i = t->dp_rank; i < batches && !failed; i += t->dp) {
        double w;
        long first = i * rc->micro_batch;
        failed = loader_fixed(&t->val, first, rc->micro_batch, t->tokens, t->weights, err);
        if (!failed) {
            sums[0] += model_forward(t->m, t->tokens, t->weights, &w);
            sums[1] += w;
        }
    }
    if (comm_agree(&t->comm, failed, err))
        return -1;
    comm_allreduce_host(&t->comm, COMM_DP, COMM_SUM, sums, 2);
    *loss = sums[0] / sums[1];
    return 0;
}

/* Loads this rank's share of the next global batch. Collective: when any rank fails, every rank returns
 * -1 with its message, and the loader is back where it was (the state stays that of the last step). */
static int load_batch(trainer *t, mt_err *err) {
    loader_state before = loader_get_state(&t->train);
    int failed =
        loader_global_batch(&t->train, t->rc->global_batch, t->dp_rank, t->dp, t->tokens, t->weights, err);
    if (!comm_agree(&t->comm, failed, err))
        return 0;
    loader_set_state(&t->train, before);
    return -1;
}

static int open_data(trainer *t, mt_err *err) {
    const run_config *rc = t->rc;
    if (loader_open(&t->train, rc->train_kind, rc->train_files.paths, rc->train_files.n, rc->seq_len,
                    (uint64_t)rc->data_seed, rc->model.vocab_size, rc->model.loss_vocab, err))
        return -1;
    if (rc->val_files.n) {
        if (loader_open(&t->val, rc->data_kind, rc->val_files.paths, rc->val_files.n, rc->seq_len,
                        (uint64_t)rc->data_seed, rc->model.vocab_size, rc->model.loss_vocab, err))
            return -1;
        t->has_val = 1;
    }
    return 0;
}

/* The run directory, config.json and the logs: written by world rank 0 only. */
static int open_outputs(trainer *t, mt_err *err) {
    const run_config *rc = t->rc;
    if (t->comm.rank[COMM_WORLD] != 0)
        return 0;
    if (mt_make_dirs(t->ckpt_dir, err) || write_config(rc, err))
        return -1;
    char msg[1024];
    return metrics_open(&t->log, rc->run_dir, msg, sizeof msg) ? mt_fail(err, "%s", msg) : 0;
}

static MPI_Comm world(trainer *t) { return t->comm.comm[COMM_WORLD]; }

static int save(trainer *t, mt_err *err) {
    const run_config *rc = t->rc;
    char *json = cJSON_PrintUnformatted(rc->resolved);
    loader_state ls = loader_get_state(&t->train);
    ckpt_meta meta = {.step = t->step,
                      .tokens_seen = t->tokens_seen,
                      .loader_epoch = ls.epoch,
                      .loader_cursor = ls.cursor,
                      .world_dp = t->dp,
                      .world_tp = rc->tp,
                      .threads = rc->threads,
                      .config_json = json,
                      .lora_base = rc->lora.rank ? (char *)rc->init_from : NULL,
                      .lora_base_crc = t->base_id};
    double t0 = mt_now();
    int bad = ckpt_save(t->ckpt_dir, &meta, t->m, &t->opt, rc->keep_last, (int)rc->keep_every, world(t), err);
    free(json);
    if (!bad) {
        t->saved_step = t->step;
        metrics_note(&t->log, "checkpoint %s/step_%ld.h5 written in %.1f s", t->ckpt_dir, t->step,
                     mt_now() - t0);
    }
    return bad;
}

/* The checkpoint to start from: --resume PATH, else RUN_DIR/ckpt/latest (or the newest one that verifies)
 * unless --no-resume; "" for a fresh start. */
static int resume_path(trainer *t, char *path, size_t cap, mt_err *err) {
    path[0] = 0;
    if (t->opt_cli->resume) {
        snprintf(path, cap, "%s", t->opt_cli->resume);
        return 0;
    }
    if (t->opt_cli->no_resume)
        return 0;
    char probe[4300];
    snprintf(probe, sizeof probe, "%s/latest", t->ckpt_dir);
    struct stat st;
    int any = lstat(probe, &st) == 0;
    if (!any) { /* no latest: any step_*.h5 left by a run killed before its first publish? */
        snprintf(probe, sizeof probe, "%s", t->ckpt_dir);
        any =
            stat(probe, &st) == 0 && ckpt_latest_valid(t->ckpt_dir, path, cap, NULL, 0, world(t), NULL) == 0;
        if (!any)
            path[0] = 0;
        return 0;
    }
    char note[1024];
    if (ckpt_latest_valid(t->ckpt_dir, path, cap, note, sizeof note, world(t), err))
        return -1;
    if (note[0])
        metrics_note(&t->log, "resume: %s", note);
    return 0;
}

/* Loads a checkpoint: everything for a resume, parameters only for init_from. A changed model is refused
 * naming the fields; changed training settings are listed in a warning. */
/* A LoRA run resumes from adapter checkpoints only (its base comes from train.init_from). */
static int check_adapter_file(trainer *t, const char *path, mt_err *err) {
    lora_ckpt_info info;
    int failed = lora_ckpt_read_info(path, &t->rc->model, &info, err);
    if (!failed && !info.lora.rank)
        failed =
            mt_fail(err,
                    "%s: not a LoRA adapter checkpoint (this run trains adapters on train.init_from; a full "
                    "checkpoint to adapt goes there)",
                    path);
    return comm_agree(&t->comm, failed, err);
}

static int load(trainer *t, const char *path, int params_only, mt_err *err) {
    ckpt_meta meta;
    if ((!params_only && t->rc->lora.rank && check_adapter_file(t, path, err)) ||
        ckpt_load(path, &meta, t->m, params_only ? NULL : &t->opt, world(t), err))
        return -1;
    char model_diff[1024], train_diff[1024];
    char *now = cJSON_PrintUnformatted(t->rc->resolved);
    config_diff(meta.config_json, now, model_diff, train_diff, sizeof model_diff);
    free(now);
    int rc = 0;
    if (!params_only && t->rc->lora.rank && meta.lora_base_crc != t->base_id)
        rc =
            mt_fail(err,
                    "%s: adapter checkpoint of another base: it was trained on %s (parameter identity %08x), "
                    "and train.init_from %s has %08x",
                    path, meta.lora_base ? meta.lora_base : "(no base named)", (unsigned)meta.lora_base_crc,
                    t->rc->init_from, (unsigned)t->base_id);
    else if (model_diff[0] && !params_only)
        rc = mt_fail(err,
                     "%s: the model config differs from the checkpoint's: %s (start a new run_dir, or use "
                     "train.init_from to take only its parameters)",
                     path, model_diff);
    else if (!params_only && meta.loader_cursor >= t->train.n_seq)
        rc = mt_fail(err,
                     "%s: loader_cursor %ld is beyond the %ld sequences of data.train (did the training data "
                     "change since the checkpoint?)",
                     path, meta.loader_cursor, t->train.n_seq);
    if (!rc && params_only) {
        metrics_note(&t->log, "init_from %s: parameters of step %ld", path, meta.step);
    } else if (!rc) {
        t->step = t->saved_step = meta.step;
        t->tokens_seen = meta.tokens_seen;
        loader_set_state(&t->train, (loader_state){meta.loader_epoch, meta.loader_cursor});
        metrics_note(&t->log, "resumed from %s at step %ld (layout then: dp %d x tp %d, %d threads)", path,
                     meta.step, meta.world_dp, meta.world_tp, meta.threads);
        if (meta.params_only) /* bin/convert hf-import: no training settings to compare either */
            metrics_note(&t->log,
                         "note: %s holds parameters only (no optimizer state): Adam's moments start at zero",
                         path);
        else if (train_diff[0])
            metrics_note(&t->log, "warning: settings changed since the checkpoint: %s", train_diff);
        if (meta.world_dp != t->dp || meta.world_tp != t->rc->tp || meta.threads != t->rc->threads)
            metrics_note(&t->log,
                         "note: a different layout or thread count resumes to floating-point tolerance, "
                         "not bit for bit");
    }
    ckpt_meta_free(&meta);
    return rc;
}

/* LoRA: the frozen base from train.init_from, and its identity, which adapter checkpoints carry. */
static int load_base(trainer *t, mt_err *err) {
    const char *base = t->rc->init_from;
    if (ckpt_load_base(base, NULL, t->m, world(t), err) ||
        comm_agree(&t->comm, ckpt_params_identity(base, &t->m->table, &t->base_id, err), err))
        return -1;
    metrics_note(&t->log, "LoRA on base %s (parameter identity %08x, frozen): %ld trainable parameters", base,
                 (unsigned)t->base_id, param_count(model_trainable(t->m).table));
    return 0;
}

static int restore(trainer *t, mt_err *err) {
    char path[4300];
    int lora = t->rc->lora.rank > 0;
    if (resume_path(t, path, sizeof path, err) || (lora && load_base(t, err)))
        return -1;
    t->loaded = path[0] || t->rc->init_from[0];
    if (path[0])
        return load(t, path, 0, err);
    if (t->rc->init_from[0] && !lora)
        return load(t, t->rc->init_from, 1, err);
    return 0;
}

/* The one pass over the data (preflight_data), timed in train.log. */
static int check_data(trainer *t, mt_err *err) {
    double t0 = mt_now();
    if (preflight_data(&t->train, t->has_val ? &t->val : NULL, t->rc->model.eot_token, &t->comm, err))
        return -1;
    long tokens = t->train.n_tokens + (t->has_val ? t->val.n_tokens : 0);
    metrics_note(&t->log, "data: %d shards, %ld tokens checked in %.1f s",
                 t->train.n_shards + t->val.n_shards, tokens, mt_now() - t0);
    return 0;
}

/* The backend with its device collectives, once the model is known to fit in memory. */
static ops *open_backend(trainer *t, mt_err *err) {
    const run_config *rc = t->rc;
    ops *o = backend_create(rc->backend, rc->threads, err);
    if (comm_agree(&t->comm, !o, err) ||
        comm_agree(&t->comm, comm_attach_backend(&t->comm, o, err), err) || /* collective: every rank has o */
        comm_agree(&t->comm, preflight_memory(rc, o, &t->comm, err), err)) {
        if (o)
            o->destroy(o);
        return NULL;
    }
    return o;
}

static int setup(trainer *t, const run_config *rc, const trainer_options *opt, mt_err *err) {
    memset(t, 0, sizeof *t);
    t->rc = rc;
    t->opt_cli = opt;
    t->saved_step = -1;
    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/ckpt", rc->run_dir);
    if (comm_init(&t->comm, MPI_COMM_WORLD, rc->tp, err))
        return -1;
    t->dp_rank = t->comm.rank[COMM_DP];
    t->dp = t->comm.size[COMM_DP];
    if (comm_agree(&t->comm, open_data(t, err), err) ||
        comm_agree(&t->comm, preflight_ckpt_dir(t->ckpt_dir, err), err) ||
        comm_agree(&t->comm, open_outputs(t, err), err))
        return -1;
    ops *o = open_backend(t, err);
    if (!o)
        return -1;
    if (check_data(t, err)) {
        o->destroy(o);
        return -1;
    }
    model_layout L = comm_model_layout(&t->comm);
    t->m = model_create_lora(&rc->model, &rc->lora, o, rc->micro_batch, rc->seq_len, &L, rc->recompute);
    t->m->z_loss = (float)rc->z_loss;
    model_init_params(t->m, (uint64_t)rc->seed);
    optim_state_init(&t->opt, t->m, &t->comm, rc->zero);
    t->tokens = mt_malloc((size_t)rc->accum * rc->micro_batch * (rc->seq_len + 1) * sizeof *t->tokens);
    t->weights = mt_malloc((size_t)rc->accum * rc->micro_batch * rc->seq_len * sizeof *t->weights);
    t->flops_per_token = model_flops_per_token(&rc->model, &t->m->table, rc->seq_len);
    t->head_flops = model_head_flops(&t->m->table);
    t->sgemm_gflops = ops_matmul_gflops(o, 1024, 0.5);
    metrics_note(
        &t->log,
        "model %s: params %ld, backend %s, world %d = dp %d x tp %d%s, %d threads per rank, sgemm %.1f "
        "GFLOP/s per rank; global batch %d = %d ranks x %d micro-batches x %d sequences of %d tokens; %ld "
        "training "
        "sequences",
        rc->model.name, param_count(&t->m->table), o->name, t->comm.size[COMM_WORLD], t->dp, rc->tp,
        t->opt.zero ? " (ZeRO-1)" : "", rc->threads, t->sgemm_gflops, rc->global_batch, t->dp, rc->accum,
        rc->micro_batch, rc->seq_len, t->train.n_seq);
    if (t->has_val && eval_sequences(t) < (long)rc->eval_batches * rc->micro_batch)
        metrics_note(
            &t->log,
            "eval: data.val has %ld sequences, fewer than train.eval_batches x micro_batch = %ld: each "
            "is used once",
            t->val.n_seq, (long)rc->eval_batches * rc->micro_batch);
    return restore(t, err);
}

static void teardown(trainer *t) {
    if (t->m) {
        ops *o = t->m->o;
        optim_state_free(&t->opt, t->m);
        model_free(t->m);
        o->destroy(o);
    }
    loader_close(&t->train);
    if (t->has_val)
        loader_close(&t->val);
    metrics_close(&t->log);
    comm_free(&t->comm);
    free(t->tokens);
    free(t->weights);
}

/* A fatal error in the middle of training, agreed on by every rank, with the training state sound (the
 * last step complete): a checkpoint of it first, unless this step has one, so that at most the steps since
 * the last checkpoint are lost (none here). */
static int stop_with_error(trainer *t, int code, mt_err *err) {
    if (t->step <= t->saved_step || t->step == 0)
        return code;
    mt_err save_err;
    if (save(t, &save_err))
        metrics_note(&t->log, "no checkpoint could be written before stopping: %s", save_err.msg);
    else
        metrics_note(&t->log, "stopping after a checkpoint of step %ld: %s", t->step, err->msg);
    return code;
}

static double payload_mb(const comm_ctx *c) {
    double b = 0;
    for (int g = 0; g < COMM_N_GROUPS; g++)
        for (int k = 0; k < COMM_N_KINDS; k++)
            b += c->bytes[g][k];
    return b / 1e6;
}

/* The end of a step, on every rank together: the stop request is MAX-reduced over the world (DESIGN 5),
 * and with it whether rank 0 failed to write its logs (a run never goes on without its record). */
static int step_boundary(trainer *t, int *sig, mt_err *err) {
    double v[2] = {signals_stop_requested(), metrics_failed(&t->log)};
    comm_allreduce_host(&t->comm, COMM_WORLD, COMM_MAX, v, 2);
    *sig = (int)v[0];
    if (v[1] == 0)
        return 0;
    if (metrics_failed(&t->log))
        *err = t->log.failure;
    return comm_agree(&t->comm, metrics_failed(&t->log), err);
}

static void report(trainer *t, step_report *r, double t0, double ts, long first) {
    const run_config *rc = t->rc;
    long tokens_per_step = (long)rc->global_batch * rc->seq_len;
    double now = mt_now();
    r->tokens_per_s = tokens_per_step / (now - ts);
    double flops = tokens_per_step * (t->flops_per_token - t->head_flops) + r->r.counted * t->head_flops;
    r->sgemm_util = flops / (now - ts) / (t->sgemm_gflops * 1e9 * t->comm.size[COMM_WORLD]);
    r->comm_mb = payload_mb(&t->comm);
    r->comm_share = t->comm.seconds / (now - ts);
    r->elapsed = now - t0;
    r->eta = r->elapsed / (double)(t->step - first) * (double)(rc->steps - t->step);
    metrics_step(&t->log, r, r->step % rc->log_every == 0 || r->step == rc->steps || r->r.skipped);
}

static int run_loop(trainer *t, mt_err *err) {
    const run_config *rc = t->rc;
    double t0 = mt_now();
    long first = t->step;
    int bad_in_a_row = 0;
    while (t->step < rc->steps) {
        double ts = mt_now();
        step_report r = {.step = t->step + 1, .steps = rc->steps};
        comm_reset_stats(&t->comm);
        if (load_batch(t, err))
            return stop_with_error(t, MT_EXIT_BAD_INPUT, err);
        train_step(t->m, &t->opt, &rc->optim, t->step, rc->accum, t->tokens, t->weights, &r.r);
        t->step++;
        t->tokens_seen += (long)rc->global_batch * rc->seq_len;
        r.tokens = t->tokens_seen;
        report(t, &r, t0, ts, first);
        bad_in_a_row = r.r.skipped ? bad_in_a_row + 1 : 0;
        if (bad_in_a_row >= rc->max_bad_steps) { /* the skipped steps left the parameters as they were */
            mt_fail(err, "stopping: %d non-finite steps in a row (train.max_bad_steps)", bad_in_a_row);
            return stop_with_error(t, MT_EXIT_INTERNAL, err);
        }
        if (t->has_val && rc->eval_every && (r.step % rc->eval_every == 0 || r.step == rc->steps)) {
            double vl;
            if (evaluate(t, &vl, err))
                return stop_with_error(t, MT_EXIT_BAD_INPUT, err);
            metrics_eval(&t->log, r.step, t->tokens_seen, vl, eval_sequences(t));
        }
        int sig;
        if (step_boundary(t, &sig, err))
            return stop_with_error(t, MT_EXIT_INTERNAL, err);
        if (sig || (rc->ckpt_every && t->step % rc->ckpt_every == 0) || t->step == rc->steps) {
            if (save(t, err))
                return MT_EXIT_INTERNAL;
        }
        if (sig) {
            metrics_note(&t->log,
                         "stopped on signal %d after step %ld; exit code %d asks a job script to requeue",
                         sig, t->step, MT_EXIT_STOPPED);
            mt_fail(err, "stopped on signal %d after writing step_%ld.h5", sig, t->step);
            return MT_EXIT_STOPPED;
        }
    }
    return MT_EXIT_OK;
}

/* --eval-only: the validation loss of the restored parameters, on stdout and in metrics.jsonl. Without a
 * checkpoint the parameters are random: refused unless --allow-untrained says that is meant. */
static int eval_only(trainer *t, mt_err *err) {
    if (!t->has_val)
        return mt_fail(err, "--eval-only needs data.val"), MT_EXIT_BAD_INPUT;
    if (!t->loaded && !t->opt_cli->allow_untrained)
        return mt_fail(err,
                       "--eval-only: no checkpoint to evaluate (%s/latest, --resume or train.init_from); "
                       "--allow-untrained evaluates the random initial parameters",
                       t->ckpt_dir),
               MT_EXIT_BAD_INPUT;
    double loss;
    if (evaluate(t, &loss, err))
        return MT_EXIT_BAD_INPUT;
    metrics_eval(&t->log, t->step, t->tokens_seen, loss, eval_sequences(t));
    if (t->comm.rank[COMM_WORLD] == 0)
        printf("eval_loss: %.9f\n", loss);
    return MT_EXIT_OK;
}

int trainer_run(const run_config *rc, const trainer_options *opt, mt_err *err) {
    trainer t;
    signals_install();
    int code = setup(&t, rc, opt, err) ? MT_EXIT_BAD_INPUT
               : opt->eval_only        ? eval_only(&t, err)
                                       : run_loop(&t, err);
    if (code != MT_EXIT_OK && code != MT_EXIT_STOPPED)
        metrics_error(&t.log, err->msg); /* train.log keeps the reason with the run */
    teardown(&t);
    return code;
}
