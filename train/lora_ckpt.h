/* The LoRA side of checkpoints (model/lora.h): an adapter checkpoint is an ordinary checkpoint of the
 * adapters (ckpt_save of a LoRA model) whose root attributes name its base, the checkpoint of the frozen
 * parameters it was trained on, by path (lora_base) and by ckpt_params_identity (lora_base_crc32c). */
#ifndef MT_LORA_CKPT_H
#define MT_LORA_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "model/lora.h"
#include "train/ckpt.h"

typedef struct {
    lora_config lora; /* rank 0: not an adapter checkpoint */
    char base[4096];  /* lora_base: the base checkpoint's path as the training run named it */
    uint32_t base_crc;
} lora_ckpt_info;

/* The LoRA config (train.lora of its config attribute) and base of checkpoint `file`, whose model config is
 * mc; info->lora.rank is 0 for a checkpoint of full parameters. Reads attributes only. */
int lora_ckpt_read_info(const char *file, const model_config *mc, lora_ckpt_info *info, mt_err *err);

/* Whether `base` holds the parameters adapter checkpoint `adapter` was trained on (identity want); a
 * one-line error naming both files otherwise. t: the base's parameter table. */
int lora_ckpt_check_base(const char *adapter, uint32_t want, const char *base, const param_table *t,
                         mt_err *err);

#endif
