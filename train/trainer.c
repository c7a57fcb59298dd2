#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/loader.h"
#include "model/model.h"
#include "model/ops_rate.h"
#include "model/ops_sizer.h"
#include "train/metrics.h"
#include "train/step.h"

static double gib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }

void trainer_dry_run(const run_config *rc) {
    char *json = cJSON_Print(rc->resolved);
    printf("%s\n", json);
    free(json);
    ops *sizer = ops_sizer_create();
    model *m = model_create(&rc->model, sizer, rc->micro_batch, rc->seq_len);
    size_t weights = m->table.total * sizeof(float);
    size_t total = ops_sizer_bytes(sizer);
    printf("params: %ld\n", param_count(&m->table));
    printf("memory per rank (GiB): weights %.3f, grads %.3f, optimizer %.3f, activations %.3f, total %.3f\n",
           gib(weights), gib(weights), gib(2 * weights), gib(total - 2 * weights), gib(total + 2 * weights));
    printf("model FLOPs per token: %.4g\n", model_flops_per_token(&m->cfg, &m->table, rc->seq_len));
    model_free(m);
    sizer->destroy(sizer);
}

static int make_dirs(const char *path, mt_err *err) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return mt_fail(err, "%s: cannot create: %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    return 0;
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
    model *m;
    optim_state opt;
    loader train, val;
    int has_val;
    int32_t *tokens;
    float *weights;
    metrics log;
    double sgemm_gflops, flops_per_token;
} trainer;

/* Token-weighted mean loss over the first eval_batches micro-batches of the validation set. */
static int evaluate(trainer *t, double *loss, mt_err *err) {
    const run_config *rc = t->rc;
    double sum = 0, wsum = 0;
    for (int i = 0; i < rc->eval_batches; i++) {
        double w;
        if (loader_fixed(&t->val, (long)i * rc->micro_batch, rc->micro_batch, t->tokens, t->weights, err))
            return -1;
        sum += model_forward(t->m, t->tokens, t->weights, &w);
        wsum += w;
    }
    *loss = sum / wsum;
    return 0;
}

/* Loads the micro-batches of one optimizer step and runs it. */
static int step_once(trainer *t, long step, step_report *rep, mt_err *err) {
    const run_config *rc = t->rc;
    if (loader_global_batch(&t->train, rc->global_batch, 0, 1, t->tokens, t->weights, err))
        return -1;
    step_result r;
    train_step(t->m, &t->opt, &rc->optim, step, rc->accum, t->tokens, t->weights, &r);
    rep->loss = r.loss;
    rep->grad_norm = r.grad_norm;
    rep->lr = r.lr;
    rep->skipped = r.skipped;
    return 0;
}

static int setup(trainer *t, const run_config *rc, mt_err *err) {
    memset(t, 0, sizeof *t);
    t->rc = rc;
    if (loader_open(&t->train, rc->data_kind, rc->train_files, rc->n_train, rc->seq_len, (uint64_t)rc->data_seed,
                    rc->model.vocab_size, rc->model.loss_vocab, err))
        return -1;
    if (rc->n_val) {
        if (loader_open(&t->val, rc->data_kind, rc->val_files, rc->n_val, rc->seq_len, (uint64_t)rc->data_seed,
                        rc->model.vocab_size, rc->model.loss_vocab, err))
            return -1;
        t->has_val = 1;
    }
    if (make_dirs(rc->run_dir, err) || write_config(rc, err))
        return -1;
    char msg[1024];
    if (metrics_open(&t->log, rc->run_dir, msg, sizeof msg))
        return mt_fail(err, "%s", msg);
    ops *o = ops_cpu_create(rc->threads);
    t->m = model_create(&rc->model, o, rc->micro_batch, rc->seq_len);
    t->m->z_loss = (float)rc->z_loss;
    model_init_params(t->m, (uint64_t)rc->seed);
    optim_state_init(&t->opt, t->m);
    /* every micro-batch of a step (the eval uses the first) */
    t->tokens = mt_malloc((size_t)rc->accum * rc->micro_batch * (rc->seq_len + 1) * sizeof *t->tokens);
    t->weights = mt_malloc((size_t)rc->accum * rc->micro_batch * rc->seq_len * sizeof *t->weights);
    t->flops_per_token = model_flops_per_token(&rc->model, &t->m->table, rc->seq_len);
    t->sgemm_gflops = ops_matmul_gflops(o, 1024, 0.5);
    metrics_note(
        &t->log,
        "model %s: params %ld, %d threads, sgemm %.1f GFLOP/s; global batch %d = %d micro-batches of %d "
        "x %d tokens; %ld training sequences",
        rc->model.name, param_count(&t->m->table), rc->threads, t->sgemm_gflops, rc->global_batch, rc->accum,
        rc->micro_batch, rc->seq_len, t->train.n_seq);
    return 0;
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
    free(t->tokens);
    free(t->weights);
}

static int run_loop(trainer *t, mt_err *err) {
    const run_config *rc = t->rc;
    double t0 = mt_now();
    long tokens_per_step = (long)rc->global_batch * rc->seq_len;
    int bad_in_a_row = 0;
    for (long step = 0; step < rc->steps; step++) {
        double ts = mt_now();
        step_report r = {.step = step + 1, .steps = rc->steps};
        if (step_once(t, step, &r, err))
            return MT_EXIT_BAD_INPUT;
        double now = mt_now();
        r.tokens_per_s = tokens_per_step / (now - ts);
        r.sgemm_util = r.tokens_per_s * t->flops_per_token / (t->sgemm_gflops * 1e9);
        r.elapsed = now - t0;
        r.eta = r.elapsed / (double)(step + 1) * (double)(rc->steps - step - 1);
        metrics_step(&t->log, &r, r.step % rc->log_every == 0 || r.step == rc->steps || r.skipped);
        bad_in_a_row = r.skipped ? bad_in_a_row + 1 : 0;
        if (bad_in_a_row >= rc->max_bad_steps) {
            mt_fail(err, "stopping: %d non-finite steps in a row (train.max_bad_steps)", bad_in_a_row);
            return MT_EXIT_INTERNAL;
        }
        if (t->has_val && rc->eval_every && (r.step % rc->eval_every == 0 || r.step == rc->steps)) {
            double vl;
            if (evaluate(t, &vl, err))
                return MT_EXIT_BAD_INPUT;
            metrics_eval(&t->log, r.step, vl);
        }
    }
    return MT_EXIT_OK;
}

int trainer_run(const run_config *rc, mt_err *err) {
    trainer t;
    int code = setup(&t, rc, err) ? MT_EXIT_BAD_INPUT : run_loop(&t, err);
    teardown(&t);
    return code;
}
