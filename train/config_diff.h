/* What changed between the run config saved in a checkpoint and the current one: a changed model is
 * refused, changed training settings are allowed with a warning (issue: resume). */
#ifndef MT_CONFIG_DIFF_H
#define MT_CONFIG_DIFF_H

#include <stddef.h>

/* Fills `model` and `train` with comma-separated key paths that differ ("" when none) between two
 * resolved run configs (JSON). Keys that describe where the run lives (run_dir) are ignored. */
void config_diff(const char *saved_json, const char *current_json, char *model, char *train, size_t cap);

#endif
