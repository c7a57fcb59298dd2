/* The run config (DESIGN 11): model + data + train sections, validated with one-line errors naming
 * the file and key path; --set overrides use the same checks. */
#ifndef MT_RUN_CONFIG_H
#define MT_RUN_CONFIG_H

#include "data/loader.h"
#include "model/config.h"
#include "model/lora.h"
#include "train/optim.h"

typedef struct {
    model_config model;
    char run_dir[4096];
    char backend[8]; /* cpu, cuda or auto */
    int threads;
    int world, tp, dp, zero; /* world layout: world = dp x tp processes; zero: ZeRO-1 optimizer sharding */
    /* data */
    jcfg_files train_files, val_files; /* expanded globs, sorted */
    loader_kind data_kind;  /* of data.val (validation always counts the loss mask, so runs compare) */
    int loss_all;           /* data.loss_on = "all": train on the whole sequence, not the response only */
    loader_kind train_kind; /* of data.train: data_kind, or LOADER_EXAMPLES_ALL with loss_all */
    int seq_len;
    long data_seed;
    /* train */
    int global_batch, micro_batch, accum;
    long steps;
    optim_config optim;
    double z_loss;
    long eval_every;
    int eval_batches;
    long log_every;
    long seed;
    int max_bad_steps; /* stop after this many non-finite steps in a row */
    long ckpt_every;   /* 0: only at the end and on a stop signal */
    int keep_last;
    long keep_every;
    char init_from[4096]; /* parameters only, fresh optimizer, step 0 (fine-tuning) */
    int recompute;        /* rerun each layer's forward in the backward instead of keeping its activations */
    lora_config lora;     /* train.lora: rank 0 when absent (every parameter is trained) */
    cJSON *resolved;      /* the whole config with defaults filled in (config.json) */
} run_config;

/* The run config's keys (jcfg_table.h), nested sections included: README "Training" lists them as
 * `bin/train --help` prints them. */
extern const jcfg_key run_config_keys[];

/* Loads PATH (a run config, or a bare model config when model_only_ok) and applies the --set
 * assignments, for a world of `world` processes. A bare model config gets default data/train sections
 * and needs no data. */
int run_config_load(run_config *rc, const char *path, char *const *sets, int n_sets, int model_only_ok,
                    int world, mt_err *err);
void run_config_free(run_config *rc);

/* train.lora (model/lora.h) of a config tree, by the run config's table: rank (absent: 0, no LoRA), alpha
 * (default: rank, a scale of 1), targets (default q_proj and v_proj, as alpaca-lora and PEFT's default for
 * GPT-J), dropout (default 0); lo NULL or null: rank 0. */
int run_config_parse_lora(const jcfg_src *src, const model_config *mc, const cJSON *lo, lora_config *lc,
                          mt_err *err);

#endif
