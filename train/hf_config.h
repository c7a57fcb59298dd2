/* Hugging Face config.json <-> meshtrain model config, for GPTJConfig, GPTNeoConfig and GPT2Config
 * (SPEC 1.1, 2.1, 3). What a model config cannot represent is refused naming the field. */
#ifndef MT_HF_CONFIG_H
#define MT_HF_CONFIG_H

#include <cjson/cJSON.h>

#include "model/config.h"
#include "train/hf_layout.h"

/* The model config equivalent to an HF config.json (path names it in errors), named `name`. Dropout
 * rates are not read: meshtrain trains without dropout. */
int hf_config_import(const cJSON *hf, const char *path, const char *name, model_config *c, hf_family *fam,
                     mt_err *err);

/* The HF family that represents c (rotary: gptj; else q/k/v biases: gpt2; else gpt_neo), or an error
 * (`where` names the config) naming the first field that family cannot express. */
int hf_family_of(const model_config *c, const char *where, hf_family *fam, mt_err *err);

/* config.json for c in family fam, with architectures and torch_dtype ("float32", "bfloat16", "float16"). */
cJSON *hf_config_export(const model_config *c, hf_family fam, const char *torch_dtype);

#endif
