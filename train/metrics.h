/* What a run reports: the step line on stdout (and train.log), and metrics.jsonl in the run directory.
 * Only the reporting rank (world rank 0) opens them; on the other ranks every call does nothing. */
#ifndef MT_METRICS_H
#define MT_METRICS_H

#include <stdio.h>

#include "base/common.h"
#include "train/step.h"

typedef struct {
    int active;
    FILE *jsonl, *log;
    char jsonl_path[4200], log_path[4200];
    int failed;
    mt_err failure; /* the first failed write: "PATH: write failed: REASON" */
} metrics;

typedef struct {
    long step, steps;
    long tokens;   /* tokens trained on after this step (global_batch x seq_len per step, padding included) */
    step_result r; /* what train_step returned */
    double tokens_per_s, sgemm_util, elapsed, eta;
    double comm_mb;    /* logical collective payload of this rank in the step, MB */
    double comm_share; /* share of the step's time spent inside collectives */
} step_report;

/* Opens RUN_DIR/metrics.jsonl and RUN_DIR/train.log for appending. */
int metrics_open(metrics *m, const char *run_dir, char *errbuf, size_t cap);
void metrics_close(metrics *m);
/* Every step goes to metrics.jsonl; the step line is printed when `print`. */
void metrics_step(metrics *m, const step_report *r, int print);
/* An evaluation (also --eval-only's, at the restored step, after `tokens` trained on) over `sequences`
 * validation sequences. */
void metrics_eval(metrics *m, long step, long tokens, double loss, long sequences);
/* A line for stdout and train.log. */
void metrics_note(metrics *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "error: MSG" into train.log only (the CLI prints the error on stderr). */
void metrics_error(metrics *m, const char *msg);
/* Whether a write to metrics.jsonl or train.log has failed (full disk, I/O error): the run must stop,
 * since it would go on without a record. m->failure names the file. */
int metrics_failed(const metrics *m);

#endif
