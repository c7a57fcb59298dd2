/* Fuzz target: the checkpoint attribute reader (train/ckpt_meta.c: format, version, the run's ckpt_meta,
 * the attribute checksum, ranges) and what bin/train and bin/generate do with the `config` attribute
 * (config_diff, the model config of bin/generate). The input either writes the attributes as meshtrain does,
 * with values and a config string of its choice (so the checksum holds and the later checks are reached),
 * or builds each attribute itself (absent, another type, string storage, arrays), or does the first and then
 * overrides some. Property: a config compared with itself has no differences. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/input.h"
#include "train/ckpt_internal.h"
#include "train/config_diff.h"
#include "train/generate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_h5_quiet();
    return 0;
}

static const char *const NAMES[] = {"format",      "format_version", "config",        "step",
                                    "tokens_seen", "loader_epoch",   "loader_cursor", "rng_state",
                                    "world_dp",    "world_tp",       "threads",       "meta_crc32c"};
enum { N_NAMES = sizeof NAMES / sizeof *NAMES };

static void write_ckpt(fz *f, const char *path) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int mode = fz_u8(f) % 3;
    char *config = fz_str(f, 1 << 16);
    if (mode != 1) {
        ckpt_meta m = {.step = (long)(fz_u64(f) >> 8),
                       .tokens_seen = (long)(fz_u64(f) >> 1),
                       .loader_epoch = (int8_t)fz_u8(f),
                       .loader_cursor = (int16_t)(fz_u8(f) << 8 | fz_u8(f)),
                       .rng_state = fz_u64(f),
                       .world_dp = (int8_t)fz_u8(f),
                       .world_tp = (int8_t)fz_u8(f),
                       .threads = (int8_t)fz_u8(f),
                       .config_json = config};
        ckpt_write_meta(file, &m);
    }
    for (int k = 0; k < N_NAMES && mode; k++) {
        uint8_t pick = fz_u8(f);
        if (mode == 2 && pick % 4) /* override a few */
            continue;
        if (H5Aexists(file, NAMES[k]) > 0)
            H5Adelete(file, NAMES[k]);
        fz_attr(f, file, NAMES[k], k == 1 ? 2 : 1, k == 0 ? "meshtrain.checkpoint" : k == 2 ? config : NULL);
    }
    free(config);
    H5Fclose(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz f = {data, size};
    const char *path = fz_scratch("ckpt");
    write_ckpt(&f, path);
    mt_err err;
    hid_t file = ckpt_open(path, &err);
    if (file >= 0) {
        ckpt_meta meta;
        if (ckpt_read_meta(file, path, &meta, &err) == 0) {
            char model[1024], train[1024];
            config_diff(meta.config_json, meta.config_json, model, train, sizeof model);
            if (model[0] || train[0]) {
                fprintf(stderr, "config_diff of a config with itself: model '%s', train '%s'\n", model,
                        train);
                abort();
            }
            ckpt_meta_free(&meta);
        }
        H5Fclose(file);
    }
    model_config cfg;
    long step;
    gen_checkpoint_config(path, &cfg, &step, &err);
    remove(path);
    return 0;
}
