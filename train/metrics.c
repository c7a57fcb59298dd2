#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

int metrics_open(metrics *m, const char *run_dir, char *errbuf, size_t cap) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    m->jsonl = fopen(path, "a");
    if (m->jsonl) {
        snprintf(path, sizeof path, "%s/train.log", run_dir);
        m->log = fopen(path, "a");
    }
    if (!m->jsonl || !m->log) {
        snprintf(errbuf, cap, "%s: cannot open for writing: %s", path, strerror(errno));
        metrics_close(m);
        return -1;
    }
    m->active = 1;
    return 0;
}

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
    if (m->log) {
        fprintf(m->log, "%s\n", line);
        fflush(m->log);
    }
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
            r->step, r->steps, r->loss, r->lr, r->grad_norm, r->tokens_per_s, r->sgemm_util, r->comm_mb,
            100 * r->comm_share, el, eta, r->skipped ? " | non-finite: update skipped" : "");
    fprintf(m->jsonl, "{\"step\": %ld, ", r->step);
    json_num(m->jsonl, "loss", r->loss);
    json_num(m->jsonl, "lr", r->lr);
    json_num(m->jsonl, "grad_norm", r->grad_norm);
    json_num(m->jsonl, "tokens_per_s", r->tokens_per_s);
    json_num(m->jsonl, "sgemm_util", r->sgemm_util);
    json_num(m->jsonl, "comm_mb", r->comm_mb);
    json_num(m->jsonl, "comm_share", r->comm_share);
    json_num(m->jsonl, "elapsed_s", r->elapsed);
    fprintf(m->jsonl, "\"skipped\": %s}\n", r->skipped ? "true" : "false");
    fflush(m->jsonl);
}

void metrics_eval(metrics *m, long step, double loss) {
    if (!m->active)
        return;
    metrics_note(m, "eval at step %ld | val loss %.4f", step, loss);
    fprintf(m->jsonl, "{\"step\": %ld, \"val_loss\": %.9g}\n", step, loss);
    fflush(m->jsonl);
}
