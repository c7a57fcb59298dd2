#include "train/hf_config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The keys each HF config class uses for the shapes (SPEC 1.1, 2.1, 3); d_ff's key is null for 4d. */
static const struct {
    const char *d_model, *n_layer, *n_head, *n_ctx, *d_ff;
} KEYS[HF_N_FAMILIES] = {
    [HF_GPTJ] = {"n_embd", "n_layer", "n_head", "n_positions", "n_inner"},
    [HF_GPT_NEO] = {"hidden_size", "num_layers", "num_heads", "max_position_embeddings", "intermediate_size"},
    [HF_GPT2] = {"n_embd", "n_layer", "n_head", "n_positions", "n_inner"},
};

static const char *const ARCHITECTURE[HF_N_FAMILIES] = {"GPTJForCausalLM", "GPTNeoForCausalLM",
                                                        "GPT2LMHeadModel"};

/* What each family's modeling code fixes (SPEC 8 tables): -1 where its config chooses. */
static const struct {
    const char *field;
    size_t offset;
    const char *values[2];
    int want[HF_N_FAMILIES];
} FIXED[] = {
    {"parallel_residual", offsetof(model_config, parallel_residual), {"false", "true"}, {1, 0, 0}},
    {"tie_embeddings", offsetof(model_config, tie_embeddings), {"false", "true"}, {0, -1, -1}},
    {"bias.qkv", offsetof(model_config, bias_qkv), {"false", "true"}, {0, 0, 1}},
    {"bias.attn_out", offsetof(model_config, bias_attn_out), {"false", "true"}, {0, 1, 1}},
    {"bias.mlp", offsetof(model_config, bias_mlp), {"false", "true"}, {1, 1, 1}},
    {"bias.lm_head", offsetof(model_config, bias_lm_head), {"false", "true"}, {1, 0, 0}},
    {"attn_scale", offsetof(model_config, attn_scaled), {"\"none\"", "\"inv_sqrt_head_dim\""}, {1, 0, -1}},
};
enum { N_FIXED = sizeof FIXED / sizeof *FIXED };

static int *field(model_config *c, int i) { return (int *)((char *)c + FIXED[i].offset); }
static int field_of(const model_config *c, int i) {
    return *(const int *)((const char *)c + FIXED[i].offset);
}

/* ------------------------------------------------------------------------------------------- import */

/* HF writes null for "the default" (n_inner, intermediate_size): the same as an absent key here. */
static cJSON *without_nulls(const cJSON *hf) {
    cJSON *o = cJSON_Duplicate(hf, 1);
    for (cJSON *e = o->child, *next; e; e = next) {
        next = e->next;
        if (cJSON_IsNull(e))
            cJSON_Delete(cJSON_DetachItemViaPointer(o, e));
    }
    return o;
}

static int family_of_type(const jcfg_src *src, const cJSON *o, hf_family *fam, mt_err *err) {
    const char *type = NULL;
    if (jcfg_str(src, "", o, "model_type", 1, &type, err))
        return -1;
    for (int f = 0; f < HF_N_FAMILIES; f++)
        if (!strcmp(type, hf_model_type((hf_family)f))) {
            *fam = (hf_family)f;
            return 0;
        }
    return mt_fail(err, "%s: model_type: \"%s\" is not supported (gptj, gpt_neo and gpt2 are)", src->file,
                   type);
}

/* GPT-Neo's attention_types [[["global", "local"], n], ...] expanded over the layers (HF's
 * expand_attention_types_params), then folded into the shortest repeating pattern. */
static int neo_pattern(const jcfg_src *src, const cJSON *o, model_config *c, mt_err *err) {
    const char *file = src->file;
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(o, "attention_types");
    if (!cJSON_IsArray(types))
        return mt_fail(err, "%s: attention_types: missing or not a list", file);
    char layers[1024];
    int n = 0;
    for (const cJSON *g = types->child; g; g = g->next) {
        const cJSON *kinds = cJSON_GetArrayItem(g, 0), *count = cJSON_GetArrayItem(g, 1);
        if (!cJSON_IsArray(g) || cJSON_GetArraySize(g) != 2 || !cJSON_IsArray(kinds) || !kinds->child ||
            !cJSON_IsNumber(count) || !(count->valuedouble >= 1 && count->valuedouble <= 1024) ||
            count->valuedouble != (int)count->valuedouble)
            return mt_fail(
                err, "%s: attention_types: entries must be [[\"global\" or \"local\", ...], count]", file);
        for (int k = 0; k < (int)count->valuedouble; k++)
            for (const cJSON *a = kinds->child; a; a = a->next) {
                const char *s = cJSON_IsString(a) ? a->valuestring : "";
                if (strcmp(s, "global") && strcmp(s, "local"))
                    return mt_fail(err, "%s: attention_types: \"%s\" is neither \"global\" nor \"local\"",
                                   file, s);
                if (n == c->n_layer)
                    return mt_fail(err, "%s: attention_types: describes more than num_layers = %d layers",
                                   file, c->n_layer);
                layers[n++] = s[0];
            }
    }
    if (n != c->n_layer)
        return mt_fail(err, "%s: attention_types: describes %d layers, num_layers is %d", file, n,
                       c->n_layer);
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(o, "attention_layers");
    for (int i = 0; given && i < n; i++) {
        const cJSON *a = cJSON_GetArrayItem(given, i);
        if (cJSON_GetArraySize(given) != n || !cJSON_IsString(a) || a->valuestring[0] != layers[i])
            return mt_fail(err, "%s: attention_layers: does not match attention_types at layer %d", file, i);
    }
    for (int p = 1; p <= MODEL_MAX_PATTERN; p++) {
        int repeats = 1;
        for (int i = p; i < n && repeats; i++)
            repeats = layers[i] == layers[i % p];
        if (repeats) {
            memcpy(c->pattern, layers, (size_t)p);
            c->n_pattern = p;
            return 0;
        }
    }
    return mt_fail(err, "%s: attention_types: the layer pattern does not repeat within %d layers", file,
                   MODEL_MAX_PATTERN);
}

/* The keys only one family has. */
static int family_keys(const jcfg_src *src, const cJSON *o, hf_family fam, model_config *c, mt_err *err) {
    const char *file = src->file;
    c->n_pattern = 1;
    c->pattern[0] = 'g';
    c->local_window = 256; /* unused by all-global models */
    if (fam == HF_GPTJ) {
        if (jcfg_int(src, "", o, "rotary_dim", 1, 2, 1 << 16, &c->rotary_dim, err))
            return -1;
        if (c->tie_embeddings)
            return mt_fail(err,
                           "%s: tie_word_embeddings: true is not supported for gptj (its lm_head has a bias)",
                           file);
        return 0;
    }
    if (fam == HF_GPT_NEO)
        return jcfg_int(src, "", o, "window_size", 0, 1, 1 << 20, &c->local_window, err) ||
               neo_pattern(src, o, c, err);
    int by_layer = 0, cross = 0;
    if (jcfg_bool(src, "", o, "scale_attn_weights", 0, &c->attn_scaled, err) ||
        jcfg_bool(src, "", o, "scale_attn_by_inverse_layer_idx", 0, &by_layer, err) ||
        jcfg_bool(src, "", o, "add_cross_attention", 0, &cross, err))
        return -1;
    if (by_layer)
        return mt_fail(err, "%s: scale_attn_by_inverse_layer_idx: true is not supported", file);
    if (cross)
        return mt_fail(err, "%s: add_cross_attention: true is not supported (a decoder-only model)", file);
    return 0;
}

static int common_keys(const jcfg_src *src, const cJSON *o, hf_family fam, model_config *c, mt_err *err) {
    const char *act = "gelu_new";
    c->eot_token = 50256;
    c->ln_eps = 1e-5;
    c->init_std = 0.02;
    c->d_ff = -1;
    if (jcfg_int(src, "", o, "vocab_size", 1, 1, 1 << 24, &c->vocab_size, err) ||
        jcfg_int(src, "", o, KEYS[fam].d_model, 1, 1, 1 << 16, &c->d_model, err) ||
        jcfg_int(src, "", o, KEYS[fam].n_layer, 1, 1, 1024, &c->n_layer, err) ||
        jcfg_int(src, "", o, KEYS[fam].n_head, 1, 1, 1024, &c->n_head, err) ||
        jcfg_int(src, "", o, KEYS[fam].n_ctx, 1, 1, 1 << 20, &c->n_ctx, err) ||
        jcfg_int(src, "", o, KEYS[fam].d_ff, 0, 1, 1 << 18, &c->d_ff, err) ||
        jcfg_int(src, "", o, "eos_token_id", 0, 0, 1 << 24, &c->eot_token, err) ||
        jcfg_num(src, "", o, "layer_norm_epsilon", 0, 1e-12, 1, &c->ln_eps, err) ||
        jcfg_num(src, "", o, "initializer_range", 0, 0, 10, &c->init_std, err) ||
        jcfg_bool(src, "", o, "tie_word_embeddings", 0, &c->tie_embeddings, err) ||
        jcfg_str(src, "", o, "activation_function", 0, &act, err))
        return -1;
    /* gelu_pytorch_tanh is the same tanh approximation under another name. */
    if (strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
        return mt_fail(err,
                       "%s: activation_function: \"%s\" is not supported (meshtrain implements gelu_new)",
                       src->file, act);
    if (c->d_ff < 0)
        c->d_ff = 4 * c->d_model;
    c->loss_vocab = c->vocab_size; /* HF's loss covers every row (SPEC 1.2) */
    return 0;
}

int hf_config_import(const cJSON *hf, const char *path, const char *name, model_config *c, hf_family *fam,
                     mt_err *err) {
    memset(c, 0, sizeof *c);
    jcfg_src src = {.file = path};
    cJSON *o = without_nulls(hf);
    int rc = family_of_type(&src, o, fam, err);
    /* What the family fixes; where its config chooses (-1: tie_word_embeddings, scale_attn_weights), HF's
     * default is true, and the key is read below. */
    for (int i = 0; i < N_FIXED && !rc; i++)
        *field(c, i) = FIXED[i].want[*fam] != 0;
    if (!rc)
        rc = common_keys(&src, o, *fam, c, err) || family_keys(&src, o, *fam, c, err);
    cJSON_Delete(o);
    if (rc)
        return -1;
    snprintf(c->name, sizeof c->name, "%s", name);
    /* The project's own validation (shapes, rotary_dim, eot_token) of the result. */
    char where[4200];
    snprintf(where, sizeof where, "%s (as a meshtrain model config)", path);
    jcfg_src conv = {.file = where};
    cJSON *mine = model_config_to_json(c);
    rc = model_config_parse(&conv, "", mine, c, err);
    cJSON_Delete(mine);
    return rc;
}

/* ------------------------------------------------------------------------------------------- export */

int hf_family_of(const model_config *c, const char *where, hf_family *fam, mt_err *err) {
    *fam = c->rotary_dim ? HF_GPTJ : c->bias_qkv ? HF_GPT2 : HF_GPT_NEO;
    const char *type = hf_model_type(*fam);
    for (int i = 0; i < N_FIXED; i++) {
        int want = FIXED[i].want[*fam], have = field_of(c, i);
        if (want >= 0 && have != want)
            return mt_fail(err, "%s: model.%s: %s cannot be expressed as %s (the family this model maps to)",
                           where, FIXED[i].field, FIXED[i].values[have], type);
    }
    if (*fam != HF_GPT_NEO && memchr(c->pattern, 'l', (size_t)c->n_pattern))
        return mt_fail(err, "%s: model.attention_layers: local layers cannot be expressed as %s", where,
                       type);
    return 0;
}

static void add_attention_types(cJSON *o, const model_config *c) {
    cJSON *types = cJSON_AddArrayToObject(o, "attention_types");
    int full = c->n_layer / c->n_pattern, rest = c->n_layer % c->n_pattern;
    for (int g = 0; g < 2; g++) {
        int count = g ? 1 : full, len = g ? rest : c->n_pattern;
        if (!count || !len)
            continue;
        cJSON *entry = cJSON_CreateArray(), *kinds = cJSON_CreateArray();
        for (int i = 0; i < len; i++)
            cJSON_AddItemToArray(kinds, cJSON_CreateString(c->pattern[i] == 'l' ? "local" : "global"));
        cJSON_AddItemToArray(entry, kinds);
        cJSON_AddItemToArray(entry, cJSON_CreateNumber(count));
        cJSON_AddItemToArray(types, entry);
    }
    cJSON *layers = cJSON_AddArrayToObject(o, "attention_layers");
    for (int i = 0; i < c->n_layer; i++)
        cJSON_AddItemToArray(layers, cJSON_CreateString(model_layer_is_local(c, i) ? "local" : "global"));
}

static void add_family_keys(cJSON *o, const model_config *c, hf_family fam) {
    static const char *const DROPOUTS[HF_N_FAMILIES][3] = {
        {"resid_pdrop", "embd_pdrop", "attn_pdrop"},
        {"resid_dropout", "embed_dropout", "attention_dropout"},
        {"resid_pdrop", "embd_pdrop", "attn_pdrop"},
    };
    for (int i = 0; i < 3; i++) /* trained without dropout */
        cJSON_AddNumberToObject(o, DROPOUTS[fam][i], 0.0);
    if (fam == HF_GPTJ) {
        cJSON_AddNumberToObject(o, "rotary_dim", c->rotary_dim);
    } else if (fam == HF_GPT_NEO) {
        add_attention_types(o, c);
        cJSON_AddNumberToObject(o, "window_size", c->local_window);
    } else {
        cJSON_AddNumberToObject(o, "n_ctx", c->n_ctx);
        cJSON_AddBoolToObject(o, "scale_attn_weights", c->attn_scaled);
        cJSON_AddBoolToObject(o, "scale_attn_by_inverse_layer_idx", 0);
        cJSON_AddBoolToObject(o, "reorder_and_upcast_attn", 0);
    }
}

cJSON *hf_config_export(const model_config *c, hf_family fam, const char *torch_dtype) {
    cJSON *o = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(ARCHITECTURE[fam]));
    cJSON_AddStringToObject(o, "model_type", hf_model_type(fam));
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, KEYS[fam].d_model, c->d_model);
    cJSON_AddNumberToObject(o, KEYS[fam].n_layer, c->n_layer);
    cJSON_AddNumberToObject(o, KEYS[fam].n_head, c->n_head);
    cJSON_AddNumberToObject(o, KEYS[fam].n_ctx, c->n_ctx);
    if (c->d_ff == 4 * c->d_model)
        cJSON_AddNullToObject(o, KEYS[fam].d_ff);
    else
        cJSON_AddNumberToObject(o, KEYS[fam].d_ff, c->d_ff);
    add_family_keys(o, c, fam);
    cJSON_AddStringToObject(o, "activation_function", "gelu_new");
    cJSON_AddNumberToObject(o, "layer_norm_epsilon", c->ln_eps);
    cJSON_AddNumberToObject(o, "initializer_range", c->init_std);
    cJSON_AddNumberToObject(o, "bos_token_id", c->eot_token);
    cJSON_AddNumberToObject(o, "eos_token_id", c->eot_token);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_embeddings);
    cJSON_AddBoolToObject(o, "use_cache", 1);
    cJSON_AddStringToObject(o, "torch_dtype", torch_dtype);
    return o;
}
