/* HF config.json <-> model config (train/hf_config.c): every shipped model config that an HF family can
 * express comes back from hf_config_export -> hf_config_import unchanged, but for what HF has no field
 * for (the name; loss_vocab, which becomes vocab_size; the window of a model without local layers); the
 * others are refused naming the field. */
#include <string.h>

#include "tests/test_model.h"
#include "tests/testutil.h"
#include "train/hf_config.h"

static model_config load(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "configs/models/%s.json", name);
    return tu_model_config(path);
}

/* The fields HF's configs carry; 0 when equal. */
static int differs(const model_config *a, const model_config *b) {
    int local = memchr(a->pattern, 'l', (size_t)a->n_pattern) != NULL;
    return a->vocab_size != b->vocab_size || b->loss_vocab != b->vocab_size || a->eot_token != b->eot_token ||
           a->n_layer != b->n_layer || a->d_model != b->d_model || a->n_head != b->n_head ||
           a->d_ff != b->d_ff || a->n_ctx != b->n_ctx || a->rotary_dim != b->rotary_dim ||
           a->parallel_residual != b->parallel_residual || a->tie_embeddings != b->tie_embeddings ||
           a->bias_qkv != b->bias_qkv || a->bias_attn_out != b->bias_attn_out || a->bias_mlp != b->bias_mlp ||
           a->bias_lm_head != b->bias_lm_head || a->attn_scaled != b->attn_scaled ||
           a->n_pattern != b->n_pattern || memcmp(a->pattern, b->pattern, (size_t)a->n_pattern) ||
           (local && a->local_window != b->local_window) || a->ln_eps != b->ln_eps ||
           a->init_std != b->init_std;
}

static void round_trip(const char *name, const char *family) {
    model_config c = load(name), back;
    hf_family fam, fam_back;
    mt_err err;
    char check[128];
    snprintf(check, sizeof check, "roundtrip.%s", name);
    if (hf_family_of(&c, name, &fam, &err)) {
        tu_check(0, check, "refused: %s", err.msg);
        return;
    }
    cJSON *hf = hf_config_export(&c, fam, "float32");
    int rc = hf_config_import(hf, "exported config.json", "back", &back, &fam_back, &err);
    cJSON_Delete(hf);
    tu_check(!rc && !strcmp(hf_model_type(fam), family) && fam_back == fam && !differs(&c, &back), check,
             "family %s (want %s): %s", hf_model_type(fam), family, rc ? err.msg : "fields differ");
}

static void refused(const char *name, const char *want) {
    model_config c = load(name);
    hf_family fam;
    mt_err err;
    char check[128];
    snprintf(check, sizeof check, "export_refuses.%s", name);
    int rc = hf_family_of(&c, name, &fam, &err);
    tu_check(rc && strstr(err.msg, want), check, "rc %d, message '%s' (want '%s')", rc, rc ? err.msg : "",
             want);
}

int main(void) {
    round_trip("gpt-j-6b", "gptj");
    round_trip("gptj-124m", "gptj");
    round_trip("demo-gptj", "gptj");
    round_trip("gpt-neo-125m", "gpt_neo");
    round_trip("gpt-neo-1.3b", "gpt_neo");
    round_trip("gpt-neo-2.7b", "gpt_neo");
    round_trip("tiny-neo", "gpt_neo");
    round_trip("gpt2-124m", "gpt2");
    round_trip("tiny-gpt2", "gpt2");
    refused("tiny-gptj", "model.attention_layers: local layers cannot be expressed as gptj");
    return tu_exit();
}
