/* What differs between two configs, the one routine for every such message: bin/train's resume compares
 * the run config saved in a checkpoint with the current one (a changed model is refused, changed training
 * settings are allowed with a warning), and ckpt_load names the model fields of a checkpoint for another
 * model. */
#ifndef MT_CONFIG_DIFF_H
#define MT_CONFIG_DIFF_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The names of the two sides, for differences listed with their values. */
typedef struct {
    const char *a, *b;
} config_sides;

/* Appends to out (NUL-terminated, cap bytes; " ..." ends it when the next difference does not fit) the key
 * paths below `prefix` at which a and b differ, separated by ", ": nested objects are compared key by key, a
 * key on one side only counts, anything else is compared whole (a NULL side is absent). With sides, each path
 * is followed by both values: "n_layer 2 (checkpoint) vs 4 (model)", "absent" for a missing one. Returns the
 * number of differences. */
int config_diff_json(const cJSON *a, const cJSON *b, const char *prefix, const config_sides *sides, char *out,
                     size_t cap);

/* Fills `model` and `train` with the comma-separated key paths that differ ("" when none) between two
 * resolved run configs (JSON text): the model section, and the data, train, parallel, threads and backend
 * settings. Keys that describe where the run lives (run_dir) are ignored. A text that is not strict JSON
 * (jcfg_parse: a duplicate key, say) counts as absent. */
void config_diff(const char *saved_json, const char *current_json, char *model, char *train, size_t cap);

#endif
