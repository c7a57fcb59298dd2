#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

int metrics_open(metrics *m, const char *run_dir, char *errbuf, size_t cap) {
    snprintf(m->jsonl_path, sizeof m->jsonl_path, "%s/metrics.jsonl", run_dir);
    snprintf(m->log_path, sizeof m->log_path, "%s/train.log", run_dir);
    m->failed = 0;
    m->jsonl = fopen(m->jsonl_path, "a");
    if (m->jsonl)
        m->log = fopen(m->log_path, "a");
    if (!m->jsonl || !m->log) {
        snprintf(errbuf, cap, "%s: cannot open for writing: %s", m->jsonl ? m->log_path : m->jsonl_path,
                 strerror(errno));
        metrics_close(m);
        return -1;
    }
    m->active = 1;
    return 0;
}

/* Flushes f and records the first failure of any write to it since the last check. */
static void settle(metrics *m, FILE *f, const char *path) {
    int bad = fflush(f) != 0 || ferror(f);
    if (bad && !m->failed) {
        mt_fail(&m->failure, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
        m->failed = 1;
    }
    clearerr(f);
}

int metrics_failed(const metrics *m) { return m->failed; }

void metrics_close(metrics *m) {
    if (m->jsonl)
        fclose(m->jsonl);
    if (m->log)
        fclose(m->log);
    m->jsonl = m->log = NULL;
    m->active = 0;
}

/* JSON has no NaN or infinity: a non-finite value is written as null. */
static void json_num(FILE *f, const char *key, double v) {
    if (isfinite(v))
        fprintf(f, "\"%s\": %.9g, ", key, v);
    else
        fprintf(f, "\"%s\": null, ", key);
}

static void hms(double s, char *out, size_t cap) {
    long t = s < 0 || s > 1e9 ? 0 : (long)(s + 0.5);
    snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void metrics_note(metrics *m, const char *fmt, ...) {
    if (!m->active)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stdout, "%s\n", line);
    fflush(stdout);
    fprintf(m->log, "%s\n", line);
    settle(m, m->log, m->log_path);
}

void metrics_error(metrics *m, const char *msg) {
    if (!m->active)
        return;
    fprintf(m->log, "error: %s\n", msg);
    settle(m, m->log, m->log_path);
}

void metrics_step(metrics *m, const step_report *r, int print) {
    if (!m->active)
        return;
    char el[32], eta[32];
    hms(r->elapsed, el, sizeof el);
    hms(r->eta, eta, sizeof eta);
    if (print)
        metrics_note(
            m,
            "step %ld/%ld | loss %.4f | lr %.3e | gnorm %.3f | %.0f tok/s | sgemm util %.2f | comm %.1f MB, "
            "%.0f%% | %s elapsed | ETA %s%s",
            r->step, r->steps, r->r.loss, r->r.lr, r->r.grad_norm, r->tokens_per_s, r->sgemm_util, r->comm_mb,
            100 * r->comm_share, el, eta, r->r.skipped ? " | non-finite: update skipped" : "");
    fprintf(m->jsonl, "{\"step\": %ld, \"tokens\": %ld, ", r->step, r->tokens);
    json_num(m->jsonl, "loss", r->r.loss);
    json_num(m->jsonl, "lr", r->r.lr);
    json_num(m->jsonl, "grad_norm", r->r.grad_norm);
    json_num(m->jsonl, "tokens_per_s", r->tokens_per_s);
    json_num(m->jsonl, "sgemm_util", r->sgemm_util);
    json_num(m->jsonl, "comm_mb", r->comm_mb);
    json_num(m->jsonl, "comm_share", r->comm_share);
    json_num(m->jsonl, "elapsed_s", r->elapsed);
    fprintf(m->jsonl, "\"skipped\": %s}\n", r->r.skipped ? "true" : "false");
    settle(m, m->jsonl, m->jsonl_path);
}

void metrics_eval(metrics *m, long step, long tokens, double loss, long sequences) {
    if (!m->active)
        return;
    metrics_note(m, "eval at step %ld | val loss %.4f | %ld sequences", step, loss, sequences);
    fprintf(m->jsonl, "{\"step\": %ld, \"tokens\": %ld, \"val_loss\": %.9g, \"val_sequences\": %ld}\n", step,
            tokens, loss, sequences);
    settle(m, m->jsonl, m->jsonl_path);
}
