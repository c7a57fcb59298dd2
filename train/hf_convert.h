/* bin/convert: Hugging Face model folders (config.json + safetensors, GPT-J / GPT-Neo / GPT-2) to and from
 * meshtrain checkpoints, streamed tensor by tensor (peak memory about one tensor). */
#ifndef MT_HF_CONVERT_H
#define MT_HF_CONVERT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "base/common.h"
#include "train/safetensors.h"

/* HF_DIR -> a parameters-only checkpoint at out (step 0; replaced only when complete), and the model config
 * at config_out (NULL: none). Config, files, names, shapes and dtypes are checked before anything is
 * written; values (NaN, inf) as they are read, a failure then leaving no file behind. */
int hf_import(const char *hf_dir, const char *out, const char *config_out, mt_err *err);

typedef struct {
    st_dtype dtype;            /* ST_F32, ST_BF16 or ST_F16 (round to nearest even) */
    uint64_t max_shard_bytes;  /* tensor bytes per safetensors file, as save_pretrained's max_shard_size */
    const char *tokenizer_dir; /* encoder.json + vocab.bpe to write as vocab.json + merges.txt; NULL: none */
} hf_export_opts;

/* A checkpoint -> the model folder out_dir (absent or empty; it appears complete or not at all):
 * config.json, model.safetensors or model-0000k-of-0000n.safetensors + model.safetensors.index.json,
 * vocab.json and merges.txt. */
int hf_export(const char *ckpt, const char *out_dir, const hf_export_opts *o, mt_err *err);

/* Writes j to path through path.tmp and a rename. */
int hf_write_json(const char *path, const cJSON *j, mt_err *err);

#endif
