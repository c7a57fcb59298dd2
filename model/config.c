#include "model/config.h"

#include <stdio.h>
#include <string.h>

/* attention_layers: a list of "global" and "local", into pattern and n_pattern. */
static int parse_pattern(const jcfg_src *src, const char *path, const cJSON *a, void *field, mt_err *err) {
    model_config *c = field;
    int n = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || n < 1 || n > MODEL_MAX_PATTERN)
        return jcfg_fail(src, path, err, "must be a non-empty list (at most 16) of \"global\" and \"local\"");
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        const char *s = cJSON_IsString(e) ? e->valuestring : "";
        if (strcmp(s, "global") && strcmp(s, "local"))
            return jcfg_fail(src, path, err, "entries must be \"global\" or \"local\"");
        c->pattern[i] = s[0] == 'g' ? 'g' : 'l';
    }
    c->n_pattern = n;
    return 0;
}

static cJSON *pattern_json(const void *field) {
    const model_config *c = field;
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < c->n_pattern; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(c->pattern[i] == 'g' ? "global" : "local"));
    return a;
}

static const jcfg_custom PATTERN = {parse_pattern, pattern_json, "list of `global`, `local` (1 to 16)"};

static void loss_vocab_default(void *base, const jcfg_src *src) {
    (void)src;
    model_config *c = base;
    c->loss_vocab = c->vocab_size;
}

#define M(member) JCFG_FIELD(model_config, member)

static const jcfg_key BIAS_KEYS[] = {
    {"qkv", JCFG_BOOL, M(bias_qkv), JCFG_REQUIRED, .help = "q, k and v projections have biases"},
    {"attn_out", JCFG_BOOL, M(bias_attn_out), JCFG_REQUIRED,
     .help = "the attention output projection has one"},
    {"mlp", JCFG_BOOL, M(bias_mlp), JCFG_REQUIRED, .help = "fc_in and fc_out have biases"},
    {"lm_head", JCFG_BOOL, M(bias_lm_head), JCFG_REQUIRED, .help = "the head has one (never a tied head)"},
    {NULL}};

static const jcfg_choice ATTN_SCALES[] = {{"inv_sqrt_head_dim", 1}, {"none", 0}, {NULL}};

const jcfg_key model_config_keys[] = {
    {"name", JCFG_STR, M(name), .def = "model", .help = "the model's name (checkpoints, exports)"},
    {"vocab_size", JCFG_INT, M(vocab_size), JCFG_REQUIRED, .lo = 1, .hi = 1 << 24,
     .help = "embedding / head rows as in HF (padded in memory to a multiple of lcm(128, tp))"},
    {"loss_vocab", JCFG_INT, M(loss_vocab), .computed = "vocab_size", .compute = loss_vocab_default, .lo = 1,
     .hi = 1 << 24, .help = "the softmax covers the first `loss_vocab` logits (GPT-2: 50257; GPT-J: 50400)"},
    {"eot_token", JCFG_INT, M(eot_token), JCFG_REQUIRED, .lo = 0, .hi = 1 << 24,
     .help = "end-of-text token id (token shards must name the same)"},
    {"n_layer", JCFG_INT, M(n_layer), JCFG_REQUIRED, .lo = 1, .hi = 1024, .help = "transformer blocks"},
    {"d_model", JCFG_INT, M(d_model), JCFG_REQUIRED, .lo = 1, .hi = 1 << 16, .help = "residual width"},
    {"n_head", JCFG_INT, M(n_head), JCFG_REQUIRED, .lo = 1, .hi = 1024,
     .help = "attention heads (divide d_model)"},
    {"d_ff", JCFG_INT, M(d_ff), JCFG_REQUIRED, .lo = 1, .hi = 1 << 18, .help = "MLP hidden width"},
    {"n_ctx", JCFG_INT, M(n_ctx), JCFG_REQUIRED, .lo = 1, .hi = 1 << 20, .help = "longest sequence"},
    {"rotary_dim", JCFG_INT, M(rotary_dim), JCFG_REQUIRED, .lo = 0, .hi = 1 << 16,
     .help =
         "0: learned positions (`wpe`); else GPT-J interleaved rotary on that many features per head (even, "
         "at most the head dim)"},
    {"parallel_residual", JCFG_BOOL, M(parallel_residual), JCFG_REQUIRED,
     .help = "GPT-J block (x + attn(ln x) + mlp(ln x)) or sequential (GPT-2/Neo)"},
    {"tie_embeddings", JCFG_BOOL, M(tie_embeddings), JCFG_REQUIRED, .help = "head = `wte`"},
    {"bias", JCFG_SECTION, 0, 0, JCFG_REQUIRED, .keys = BIAS_KEYS},
    {"attn_scale", JCFG_ENUM, M(attn_scaled), JCFG_REQUIRED, .choices = ATTN_SCALES,
     .help = "scores x 1/sqrt(head dim), or unscaled (GPT-Neo)"},
    {"attention_layers", JCFG_CUSTOM, 0, 0, .def = "[\"global\"]", .custom = &PATTERN,
     .help = "pattern of global and local layers, repeated over depth"},
    {"local_window", JCFG_INT, M(local_window), .def = "256", .lo = 1, .hi = 1 << 20,
     .help = "keys a local layer sees, the token itself included"},
    {"layer_norm_eps", JCFG_NUM, M(ln_eps), .def = "1e-5", .lo = 1e-12, .hi = 1, .help = "LayerNorm epsilon"},
    {"init_std", JCFG_NUM, M(init_std), .def = "0.02", .lo = 0, .hi = 10,
     .help = "standard deviation of the initial weights"},
    {NULL}};

/* The rules between keys, after the table's parse. */
static int check_shapes(const jcfg_src *src, const char *prefix, const model_config *c, mt_err *err) {
    char p[JCFG_PATH_MAX];
    int dh = c->d_model / c->n_head;
    if (c->d_model % c->n_head)
        return jcfg_fail(src, jcfg_path(prefix, "n_head", p), err, "%d heads do not divide d_model %d",
                         c->n_head, c->d_model);
    if (c->rotary_dim % 2 || c->rotary_dim > dh)
        return jcfg_fail(src, jcfg_path(prefix, "rotary_dim", p), err,
                         "%d must be even and at most the head dim %d", c->rotary_dim, dh);
    if (c->loss_vocab > c->vocab_size)
        return jcfg_fail(src, jcfg_path(prefix, "loss_vocab", p), err, "%d exceeds vocab_size %d",
                         c->loss_vocab, c->vocab_size);
    if (c->eot_token >= c->vocab_size)
        return jcfg_fail(src, jcfg_path(prefix, "eot_token", p), err, "%d is not below vocab_size %d",
                         c->eot_token, c->vocab_size);
    if (c->tie_embeddings && c->bias_lm_head)
        return jcfg_fail(src, jcfg_path(prefix, "bias.lm_head", p), err,
                         "a tied head (tie_embeddings) has no bias");
    return 0;
}

int model_config_parse(const jcfg_src *src, const char *prefix, const cJSON *obj, model_config *c,
                       mt_err *err) {
    memset(c, 0, sizeof *c);
    return jcfg_parse(src, prefix, obj, model_config_keys, c, err) || check_shapes(src, prefix, c, err) ? -1
                                                                                                        : 0;
}

cJSON *model_config_to_json(const model_config *c) { return jcfg_to_json(model_config_keys, c); }
