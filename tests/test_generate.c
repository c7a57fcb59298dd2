/* Inference with a key/value cache (model_create_infer) against the training forward, for a tiny config of
 * each family with perturbed random weights (seed printed):
 *  - prefill: the logits of a prompt's last position equal the training forward's logits at that position;
 *  - every decoding step's logits equal those of a full recomputation over the whole sequence (the training
 *    forward over all L positions, whose row p sees exactly positions 0..p);
 * both to 1e-5 relative, for 2 sequences at once, prompts of 1 and 9 tokens (9 is longer than the local
 * window of 6 of tiny-gptj and tiny-neo) and 40 positions in all (the local layers' rings wrap several
 * times; GPT-J's rotary runs at positions past the prompt). Decoding steps allocate nothing on the backend
 * (counted through a wrapper of the CPU backend). */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tests/test_model.h"
#include "tests/testutil.h"

enum { B = 2, L = 40 };

/* The CPU backend with alloc counted. */
static ops *cpu;
static long n_allocs;
static ops_buf *counting_alloc(ops *o, size_t n, ops_dtype t) {
    n_allocs++;
    return cpu->alloc(o, n, t);
}
static void counting_destroy(ops *o) {
    cpu->destroy(cpu);
    free(o);
}

static ops *counting_backend(void) {
    cpu = ops_cpu_create(2);
    ops *o = mt_malloc(sizeof *o);
    *o = *cpu;
    o->alloc = counting_alloc;
    o->destroy = counting_destroy;
    return o;
}

/* Copies every parameter of `from` (a training model) into the inference model `to`. */
static void copy_params(model *from, model *to) {
    for (int i = 0; i < from->table.n; i++) {
        const param_info *p = &from->table.p[i];
        float *x = mt_malloc((size_t)(p->shape[0] * p->shape[1]) * sizeof *x);
        model_get_tensor(from, from->params, i, x);
        model_set_tensor(to, to->params, i, x);
        free(x);
    }
}

/* Worst relative error over the B sequences of logits [B, V] against rows b * L + pos of full [B*L, V]. */
static double worst_at(const float *logits, const float *full, int V, int pos) {
    double worst = 0;
    for (int b = 0; b < B; b++) {
        double e = tu_rel_err_ff(logits + (size_t)b * V, full + ((size_t)b * L + pos) * V, (size_t)V);
        worst = e > worst || e != e ? e : worst;
    }
    return worst;
}

static void check_family(const char *fam, const char *config_path, ops *o) {
    model_config cfg = tu_model_config(config_path);
    model *train = model_create(&cfg, o, B, L);
    model_init_params(train, tu_next());
    tu_perturb_params(train);
    int32_t *tokens = mt_malloc((size_t)B * (L + 1) * sizeof *tokens),
            *ids = mt_malloc((size_t)B * L * sizeof *ids);
    float *w = mt_malloc((size_t)B * L * sizeof *w);
    for (int i = 0; i < B * (L + 1); i++)
        tokens[i] = tu_int(cfg.loss_vocab);
    for (int i = 0; i < B * L; i++) {
        ids[i] = tokens[(i / L) * (L + 1) + i % L];
        w[i] = 1.0f;
    }
    double wsum;
    model_forward(train, tokens, w, &wsum);
    int V = (int)train->table.p[train->table.head_w].valid_rows;
    float *full = mt_malloc((size_t)B * L * V * sizeof *full),
          *logits = mt_malloc((size_t)B * V * sizeof *logits);
    model_get_logits(train, full);

    model *inf = model_create_infer(&cfg, o, B, cfg.n_ctx, NULL);
    copy_params(train, inf);
    model_infer_ready(inf);
    int32_t *prompt = mt_malloc((size_t)B * L * sizeof *prompt), step[B];
    static const int PROMPTS[2] = {1, 9};
    for (int k = 0; k < 2; k++) {
        int P = PROMPTS[k];
        for (int b = 0; b < B; b++)
            memcpy(prompt + (size_t)b * P, ids + (size_t)b * L, (size_t)P * sizeof *prompt);
        model_prefill(inf, prompt, P);
        model_get_last_logits(inf, logits, V);
        char name[160];
        snprintf(name, sizeof name, "%s.prefill %d tokens = training forward at position %d", fam, P, P - 1);
        tu_check_rel(worst_at(logits, full, V, P - 1), 1e-5, name);
        double worst = 0;
        int worst_pos = -1;
        long allocs = n_allocs;
        for (int pos = P; pos < L; pos++) {
            for (int b = 0; b < B; b++)
                step[b] = ids[(size_t)b * L + pos];
            CHECK(model_next_position(inf) == pos, "next position %d, expected %d", model_next_position(inf),
                  pos);
            model_decode(inf, step);
            model_get_last_logits(inf, logits, V);
            double e = worst_at(logits, full, V, pos);
            if (e > worst || e != e) {
                worst = e;
                worst_pos = pos;
            }
        }
        snprintf(name, sizeof name, "%s.decode positions %d..%d = full recomputation (worst at %d)", fam, P,
                 L - 1, worst_pos);
        tu_check_rel(worst, 1e-5, name);
        snprintf(name, sizeof name, "%s.decode from %d: no allocation per token", fam, P);
        tu_check(n_allocs == allocs, name, "%ld backend allocations during %d steps", n_allocs - allocs,
                 L - P);
    }
    model_free(inf);
    model_free(train);
    free(tokens);
    free(ids);
    free(w);
    free(full);
    free(logits);
    free(prompt);
}

int main(void) {
    tu_srand(tu_seed("test_generate"));
    ops *o = counting_backend();
    check_family("gptj", "configs/models/tiny-gptj.json", o);
    check_family("neo", "configs/models/tiny-neo.json", o);
    check_family("gpt2", "configs/models/tiny-gpt2.json", o);
    o->destroy(o);
    return tu_exit();
}
