#include "model/config.h"

#include <stdio.h>
#include <string.h>

static const char *const MODEL_KEYS[] = {"name",
                                         "vocab_size",
                                         "loss_vocab",
                                         "eot_token",
                                         "n_layer",
                                         "d_model",
                                         "n_head",
                                         "d_ff",
                                         "n_ctx",
                                         "rotary_dim",
                                         "parallel_residual",
                                         "tie_embeddings",
                                         "bias",
                                         "attn_scale",
                                         "attention_layers",
                                         "local_window",
                                         "layer_norm_eps",
                                         "init_std",
                                         NULL};
static const char *const BIAS_KEYS[] = {"qkv", "attn_out", "mlp", "lm_head", NULL};

static int bad(const jcfg_src *src, const char *prefix, const char *key, mt_err *err, const char *what) {
    char path[256], where[512];
    snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
    jcfg_where(src, path, where, sizeof where);
    return mt_fail(err, "%s: %s", where, what);
}

static int parse_pattern(const jcfg_src *src, const char *prefix, const cJSON *obj, model_config *c,
                         mt_err *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "attention_layers");
    c->n_pattern = 1;
    c->pattern[0] = 'g';
    if (!a)
        return 0;
    int n = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || n < 1 || n > MODEL_MAX_PATTERN)
        return bad(src, prefix, "attention_layers", err,
                   "must be a non-empty list (at most 16) of \"global\" and \"local\"");
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        const char *s = cJSON_IsString(e) ? e->valuestring : "";
        if (strcmp(s, "global") && strcmp(s, "local"))
            return bad(src, prefix, "attention_layers", err, "entries must be \"global\" or \"local\"");
        c->pattern[i] = s[0] == 'g' ? 'g' : 'l';
    }
    c->n_pattern = n;
    return 0;
}

static int check_shapes(const jcfg_src *src, const char *prefix, model_config *c, mt_err *err) {
    char what[160];
    if (c->d_model % c->n_head) {
        snprintf(what, sizeof what, "%d heads do not divide d_model %d", c->n_head, c->d_model);
        return bad(src, prefix, "n_head", err, what);
    }
    int dh = c->d_model / c->n_head;
    if (c->rotary_dim % 2 || c->rotary_dim > dh) {
        snprintf(what, sizeof what, "%d must be even and at most the head dim %d", c->rotary_dim, dh);
        return bad(src, prefix, "rotary_dim", err, what);
    }
    if (c->loss_vocab > c->vocab_size) {
        snprintf(what, sizeof what, "%d exceeds vocab_size %d", c->loss_vocab, c->vocab_size);
        return bad(src, prefix, "loss_vocab", err, what);
    }
    if (c->eot_token >= c->vocab_size) {
        snprintf(what, sizeof what, "%d is not below vocab_size %d", c->eot_token, c->vocab_size);
        return bad(src, prefix, "eot_token", err, what);
    }
    if (c->tie_embeddings && c->bias_lm_head)
        return bad(src, prefix, "bias.lm_head", err, "a tied head (tie_embeddings) has no bias");
    return 0;
}

int model_config_parse(const jcfg_src *src, const char *prefix, const cJSON *obj, model_config *c,
                       mt_err *err) {
    memset(c, 0, sizeof *c);
    if (jcfg_only_keys(src, prefix, obj, MODEL_KEYS, err))
        return -1;
    const char *name = "model", *scale = "inv_sqrt_head_dim";
    c->ln_eps = 1e-5;
    c->init_std = 0.02;
    c->loss_vocab = -1;
    c->local_window = 256;
    if (jcfg_str(src, prefix, obj, "name", 0, &name, err) ||
        jcfg_int(src, prefix, obj, "vocab_size", 1, 1, 1 << 24, &c->vocab_size, err) ||
        jcfg_int(src, prefix, obj, "loss_vocab", 0, 1, 1 << 24, &c->loss_vocab, err) ||
        jcfg_int(src, prefix, obj, "eot_token", 1, 0, 1 << 24, &c->eot_token, err) ||
        jcfg_int(src, prefix, obj, "n_layer", 1, 1, 1024, &c->n_layer, err) ||
        jcfg_int(src, prefix, obj, "d_model", 1, 1, 1 << 16, &c->d_model, err) ||
        jcfg_int(src, prefix, obj, "n_head", 1, 1, 1024, &c->n_head, err) ||
        jcfg_int(src, prefix, obj, "d_ff", 1, 1, 1 << 18, &c->d_ff, err) ||
        jcfg_int(src, prefix, obj, "n_ctx", 1, 1, 1 << 20, &c->n_ctx, err) ||
        jcfg_int(src, prefix, obj, "rotary_dim", 1, 0, 1 << 16, &c->rotary_dim, err) ||
        jcfg_bool(src, prefix, obj, "parallel_residual", 1, &c->parallel_residual, err) ||
        jcfg_bool(src, prefix, obj, "tie_embeddings", 1, &c->tie_embeddings, err) ||
        jcfg_str(src, prefix, obj, "attn_scale", 1, &scale, err) ||
        jcfg_int(src, prefix, obj, "local_window", 0, 1, 1 << 20, &c->local_window, err) ||
        jcfg_num(src, prefix, obj, "layer_norm_eps", 0, 1e-12, 1, &c->ln_eps, err) ||
        jcfg_num(src, prefix, obj, "init_std", 0, 0, 10, &c->init_std, err))
        return -1;
    snprintf(c->name, sizeof c->name, "%s", name);
    if (c->loss_vocab < 0)
        c->loss_vocab = c->vocab_size;
    if (strcmp(scale, "inv_sqrt_head_dim") && strcmp(scale, "none"))
        return bad(src, prefix, "attn_scale", err, "must be \"inv_sqrt_head_dim\" or \"none\"");
    c->attn_scaled = strcmp(scale, "none") != 0;

    const cJSON *bias;
    char bprefix[128];
    snprintf(bprefix, sizeof bprefix, "%s%sbias", prefix, *prefix ? "." : "");
    if (jcfg_obj(src, prefix, obj, "bias", 1, &bias, err) ||
        jcfg_only_keys(src, bprefix, bias, BIAS_KEYS, err) ||
        jcfg_bool(src, bprefix, bias, "qkv", 1, &c->bias_qkv, err) ||
        jcfg_bool(src, bprefix, bias, "attn_out", 1, &c->bias_attn_out, err) ||
        jcfg_bool(src, bprefix, bias, "mlp", 1, &c->bias_mlp, err) ||
        jcfg_bool(src, bprefix, bias, "lm_head", 1, &c->bias_lm_head, err))
        return -1;
    if (parse_pattern(src, prefix, obj, c, err))
        return -1;
    return check_shapes(src, prefix, c, err);
}

cJSON *model_config_to_json(const model_config *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "loss_vocab", c->loss_vocab);
    cJSON_AddNumberToObject(o, "eot_token", c->eot_token);
    cJSON_AddNumberToObject(o, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(o, "d_model", c->d_model);
    cJSON_AddNumberToObject(o, "n_head", c->n_head);
    cJSON_AddNumberToObject(o, "d_ff", c->d_ff);
    cJSON_AddNumberToObject(o, "n_ctx", c->n_ctx);
    cJSON_AddNumberToObject(o, "rotary_dim", c->rotary_dim);
    cJSON_AddBoolToObject(o, "parallel_residual", c->parallel_residual);
    cJSON_AddBoolToObject(o, "tie_embeddings", c->tie_embeddings);
    cJSON *b = cJSON_AddObjectToObject(o, "bias");
    cJSON_AddBoolToObject(b, "qkv", c->bias_qkv);
    cJSON_AddBoolToObject(b, "attn_out", c->bias_attn_out);
    cJSON_AddBoolToObject(b, "mlp", c->bias_mlp);
    cJSON_AddBoolToObject(b, "lm_head", c->bias_lm_head);
    cJSON_AddStringToObject(o, "attn_scale", c->attn_scaled ? "inv_sqrt_head_dim" : "none");
    cJSON *a = cJSON_AddArrayToObject(o, "attention_layers");
    for (int i = 0; i < c->n_pattern; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(c->pattern[i] == 'g' ? "global" : "local"));
    cJSON_AddNumberToObject(o, "local_window", c->local_window);
    cJSON_AddNumberToObject(o, "layer_norm_eps", c->ln_eps);
    cJSON_AddNumberToObject(o, "init_std", c->init_std);
    return o;
}
