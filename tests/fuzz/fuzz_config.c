/* Fuzz target: the run-config and model-config parser (train/run_config.c, model/config.c, model/jcfg.c):
 * strict JSON, key tables, ranges, globs, the model include and --set. The input is the config file; after a
 * NUL byte come --set assignments separated by NUL bytes. The config is loaded as bin/train loads it (with
 * and without --dry-run's bare model configs, by the low bit of the size). Properties: the resolved config
 * parses again to the same values (its model config reparses to the same model config), and compares equal
 * to itself in config_diff. */
#define _GNU_SOURCE /* memfd_create */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/input.h"
#include "train/config_diff.h"
#include "train/run_config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 0;
}

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "%s\n", detail);
    fz_check(0, what);
}

/* The resolved config's model section parses to the same model config. */
static void check_model_roundtrip(const run_config *rc) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(rc->resolved, "model");
    model_config again;
    mt_err err;
    jcfg_src src = {.file = "resolved"};
    if (model_config_parse(&src, "model", m, &again, &err))
        fail("the resolved model config does not parse", err.msg);
    cJSON *a = model_config_to_json(&rc->model), *b = model_config_to_json(&again);
    if (!cJSON_Compare(a, b, 1))
        fail("the resolved model config parses to another one", rc->model.name);
    cJSON_Delete(a);
    cJSON_Delete(b);
    char *text = cJSON_PrintUnformatted(rc->resolved), model[512], train[512];
    config_diff(text, text, model, train, sizeof model);
    if (model[0] || train[0])
        fail("the resolved config differs from itself", model[0] ? model : train);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    char *sets_buf = malloc(size - text_len + 1), *sets[16];
    int n_sets = 0;
    if (nul) { /* NUL-separated --set assignments */
        memcpy(sets_buf, nul + 1, size - text_len - 1);
        sets_buf[size - text_len - 1] = 0;
        for (char *s = sets_buf; s < sets_buf + (size - text_len - 1) && n_sets < 16; s += strlen(s) + 1)
            sets[n_sets++] = s;
    }
    int fd = memfd_create("config", 0);
    if (fd < 0 || write(fd, data, text_len) != (ssize_t)text_len)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    run_config rc;
    mt_err err;
    if (run_config_load(&rc, path, sets, n_sets, (int)(size & 1), 1, &err) == 0) {
        check_model_roundtrip(&rc);
        run_config_free(&rc);
    }
    close(fd);
    free(sets_buf);
    return 0;
}
