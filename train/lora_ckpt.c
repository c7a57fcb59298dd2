#include "train/lora_ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shard.h"
#include "train/ckpt_internal.h"
#include "train/run_config.h"

/* train.lora of a run config's text. */
static int lora_of_config(const char *file, const char *text, const model_config *mc, lora_config *lc,
                          mt_err *err) {
    cJSON *root = cJSON_Parse(text);
    const cJSON *tr = root ? cJSON_GetObjectItemCaseSensitive(root, "train") : NULL;
    jcfg_src src = {.file = file};
    int rc =
        run_config_parse_lora(&src, mc, tr ? cJSON_GetObjectItemCaseSensitive(tr, "lora") : NULL, lc, err);
    cJSON_Delete(root);
    return rc;
}

int lora_ckpt_read_info(const char *file, const model_config *mc, lora_ckpt_info *info, mt_err *err) {
    memset(info, 0, sizeof *info);
    h5_quiet();
    hid_t f = ckpt_open(file, err);
    if (f < 0)
        return -1;
    char *config = h5_get_str(f, "config", NULL), *base = h5_get_str(f, "lora_base", NULL);
    uint64_t crc = 0;
    int rc = 0;
    if (base && (h5_get_u64(f, "lora_base_crc32c", &crc) || crc > UINT32_MAX))
        rc = mt_fail(err, "%s: attribute lora_base_crc32c is missing or not a 32-bit integer", file);
    else if (base && !config)
        rc = mt_fail(err, "%s: attribute config is missing or not a string", file);
    else if (base)
        rc = lora_of_config(file, config, mc, &info->lora, err);
    if (!rc && base && !info->lora.rank)
        rc = mt_fail(err, "%s: names a LoRA base (%s) but its config has no train.lora", file, base);
    if (!rc && base) {
        snprintf(info->base, sizeof info->base, "%s", base);
        info->base_crc = (uint32_t)crc;
    }
    free(config);
    free(base);
    H5Fclose(f);
    return rc;
}

int lora_ckpt_check_base(const char *adapter, uint32_t want, const char *base, const param_table *t,
                         mt_err *err) {
    uint32_t got;
    if (ckpt_params_identity(base, t, &got, err))
        return -1;
    if (got != want)
        return mt_fail(err,
                       "%s: adapter checkpoint of another base: it was trained on parameters with identity "
                       "%08x, and %s has %08x",
                       adapter, (unsigned)want, base, (unsigned)got);
    return 0;
}
