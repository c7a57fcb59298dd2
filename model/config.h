/* The model config (DESIGN 3): a model family is a config, not a code path. */
#ifndef MT_CONFIG_H
#define MT_CONFIG_H

#include <cjson/cJSON.h>

#include "base/jcfg_table.h"

enum { MODEL_MAX_PATTERN = 16 };

typedef struct {
    char name[64];
    int vocab_size; /* embedding / head rows as in HF (what checkpoints store) */
    int loss_vocab; /* softmax columns: the first loss_vocab logits */
    int eot_token;
    int n_layer, d_model, n_head, d_ff, n_ctx;
    int rotary_dim; /* 0 = learned absolute positions (wpe) */
    int parallel_residual;
    int tie_embeddings;
    int bias_qkv, bias_attn_out, bias_mlp, bias_lm_head;
    int attn_scaled; /* 1: scores * 1/sqrt(head_dim); 0: unscaled (GPT-Neo) */
    int n_pattern;
    char pattern[MODEL_MAX_PATTERN]; /* 'g' global, 'l' local; layer i uses pattern[i % n_pattern] */
    int local_window;
    double ln_eps, init_std;
} model_config;

/* The model config's keys (jcfg_table.h): README "Model configs" lists them as `bin/train --help` prints
 * them. */
extern const jcfg_key model_config_keys[];

/* Validates the model object found at key path `prefix` ("" for a model file, "model" inside a run
 * config) and fills cfg. */
int model_config_parse(const jcfg_src *src, const char *prefix, const cJSON *obj, model_config *cfg,
                       mt_err *err);

/* The resolved config as JSON (every key, defaults filled in). */
cJSON *model_config_to_json(const model_config *cfg);

static inline int model_layer_is_local(const model_config *c, int layer) {
    return c->pattern[layer % c->n_pattern] == 'l';
}

static inline int model_head_dim(const model_config *c) { return c->d_model / c->n_head; }

#endif
