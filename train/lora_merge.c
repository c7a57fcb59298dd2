#include "train/lora_merge.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/ckpt_stream.h"
#include "train/generate.h"
#include "train/lora_ckpt.h"

typedef struct {
    model_config cfg;
    lora_ckpt_info info;
    const char *base;
    param_table table, adapters; /* one process: global shapes */
    lora_adapter *ad;
    int n;
    int *of_base;
} merge_job;

/* The adapter checkpoint's model, LoRA config and base, checked against the base file. */
static int open_job(merge_job *j, const char *adapter, const char *base, mt_err *err) {
    long step;
    if (gen_checkpoint_config(adapter, &j->cfg, &step, err) ||
        lora_ckpt_read_info(adapter, &j->cfg, &j->info, err))
        return -1;
    if (!j->info.lora.rank)
        return mt_fail(err, "%s: not a LoRA adapter checkpoint (it names no base)", adapter);
    j->base = base ? base : j->info.base;
    param_table_build(&j->table, &j->cfg, 1, 0);
    size_t unused;
    j->ad = lora_table_build(&j->adapters, &j->n, &unused, &j->table, &j->cfg, &j->info.lora, 1, 0);
    j->of_base = mt_malloc((size_t)j->table.n * sizeof *j->of_base);
    for (int i = 0; i < j->table.n; i++)
        j->of_base[i] = -1;
    for (int k = 0; k < j->n; k++)
        j->of_base[j->ad[k].base] = k;
    return lora_ckpt_check_base(adapter, j->info.base_crc, j->base, &j->table, err);
}

static void close_job(merge_job *j) {
    param_table_free(&j->table);
    param_table_free(&j->adapters);
    free(j->ad);
    free(j->of_base);
}

/* W [out, in] += scale B [out, r] A [r, in] for adapter k, its factors read from the adapter checkpoint. */
static int merge_into(merge_job *j, ckpt_reader *ar, int k, float *w, float *a, float *b, mt_err *err) {
    const param_info *pa = &j->adapters.p[j->ad[k].a], *pb = &j->adapters.p[j->ad[k].b];
    if (ckpt_reader_get(ar, pa, a, err) || ckpt_reader_get(ar, pb, b, err))
        return -1;
    int out = (int)pb->shape[0], in = (int)pa->shape[1], r = j->info.lora.rank;
    float scale = (float)(j->info.lora.alpha / r); /* the same float the training forward scaled by */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in, r, scale, b, r, a, in, 1.0f, w, in);
    return 0;
}

static int write_merged(merge_job *j, const char *adapter, const char *out, mt_err *err) {
    ckpt_meta bm = {0}, am = {0};
    ckpt_reader *br = ckpt_reader_open(j->base, &bm, err),
                *ar = br ? ckpt_reader_open(adapter, &am, err) : NULL;
    if (!ar) {
        if (br)
            ckpt_reader_close(br);
        ckpt_meta_free(&bm);
        return -1;
    }
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddItemToObject(cfg, "model", model_config_to_json(&j->cfg));
    char *json = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    ckpt_meta meta = {.step = am.step,
                      .tokens_seen = am.tokens_seen,
                      .world_dp = 1,
                      .world_tp = 1,
                      .threads = 1,
                      .config_json = json};
    ckpt_writer *w = ckpt_writer_open(out, &meta, &j->table, err);
    size_t biggest = 0, ab = 0;
    for (int i = 0; i < j->table.n; i++)
        biggest = j->table.p[i].numel > biggest ? j->table.p[i].numel : biggest;
    for (int i = 0; i < j->adapters.n; i++)
        ab = j->adapters.p[i].numel > ab ? j->adapters.p[i].numel : ab;
    float *buf = mt_malloc(biggest * sizeof *buf), *a = mt_malloc(ab * sizeof *a),
          *b = mt_malloc(ab * sizeof *b);
    int rc = w ? 0 : -1;
    for (int i = 0; i < j->table.n && !rc; i++) {
        rc = ckpt_reader_get(br, &j->table.p[i], buf, err);
        if (!rc && j->of_base[i] >= 0)
            rc = merge_into(j, ar, j->of_base[i], buf, a, b, err);
        if (!rc)
            rc = ckpt_writer_put(w, i, buf, err);
    }
    if (w)
        rc = ckpt_writer_close(w, rc != 0, err) || rc;
    free(buf);
    free(a);
    free(b);
    free(json);
    ckpt_reader_close(br);
    ckpt_reader_close(ar);
    ckpt_meta_free(&bm);
    ckpt_meta_free(&am);
    return rc ? -1 : 0;
}

int lora_merge(const char *adapter, const char *base, const char *out, mt_err *err) {
    merge_job j;
    memset(&j, 0, sizeof j);
    int rc = open_job(&j, adapter, base, err) || write_merged(&j, adapter, out, err);
    close_job(&j);
    return rc ? -1 : 0;
}
