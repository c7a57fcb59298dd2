#include "train/config_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/jcfg.h"

/* Appends one difference whole, or " ..." once when it no longer fits: a message is never cut mid-value.
 * Values are shortened to a prefix (mt_clip). */
static void add(const char *path, const cJSON *a, const cJSON *b, const config_sides *sides, char *out,
                size_t cap) {
    static const char MORE[] = " ...";
    size_t n = strlen(out);
    if (n >= sizeof MORE - 1 && !strcmp(out + n - (sizeof MORE - 1), MORE))
        return;
    char item[600], ca[MT_CLIP_CAP], cb[MT_CLIP_CAP];
    if (!sides) {
        snprintf(item, sizeof item, "%s%s", n ? ", " : "", path);
    } else {
        char *va = a ? cJSON_PrintUnformatted(a) : NULL, *vb = b ? cJSON_PrintUnformatted(b) : NULL;
        snprintf(item, sizeof item, "%s%s %s (%s) vs %s (%s)", n ? ", " : "", path,
                 va ? mt_clip(va, ca) : "absent", sides->a, vb ? mt_clip(vb, cb) : "absent", sides->b);
        free(va);
        free(vb);
    }
    if (n + strlen(item) + sizeof MORE <= cap)
        memcpy(out + n, item, strlen(item) + 1);
    else if (n + sizeof MORE <= cap)
        memcpy(out + n, MORE, sizeof MORE);
}

static void join(char *path, size_t cap, const char *prefix, const char *key) {
    snprintf(path, cap, "%s%s%s", prefix, *prefix ? "." : "", key);
}

int config_diff_json(const cJSON *a, const cJSON *b, const char *prefix, const config_sides *sides, char *out,
                     size_t cap) {
    if (!a && !b)
        return 0;
    if (!cJSON_IsObject(a) || !cJSON_IsObject(b)) {
        if (a && b && cJSON_Compare(a, b, 1))
            return 0;
        add(prefix, a, b, sides, out, cap);
        return 1;
    }
    int n = 0;
    char path[256];
    for (const cJSON *x = a->child; x; x = x->next) {
        join(path, sizeof path, prefix, x->string);
        n += config_diff_json(x, cJSON_GetObjectItemCaseSensitive(b, x->string), path, sides, out, cap);
    }
    for (const cJSON *y = b->child; y; y = y->next)
        if (!cJSON_HasObjectItem(a, y->string)) {
            join(path, sizeof path, prefix, y->string);
            n += config_diff_json(NULL, y, path, sides, out, cap);
        }
    return n;
}

void config_diff(const char *saved_json, const char *current_json, char *model, char *train, size_t cap) {
    model[0] = train[0] = 0;
    /* strict, as every config meshtrain reads: a duplicate key would make a config differ from itself */
    cJSON *s = saved_json ? jcfg_parse_text(saved_json, strlen(saved_json), "checkpoint", NULL) : NULL;
    cJSON *c = current_json ? jcfg_parse_text(current_json, strlen(current_json), "config", NULL) : NULL;
    config_diff_json(cJSON_GetObjectItemCaseSensitive(s, "model"),
                     cJSON_GetObjectItemCaseSensitive(c, "model"), "model", NULL, model, cap);
    static const char *const SECTIONS[] = {"data", "train", "parallel", "threads", "backend"};
    for (size_t i = 0; i < sizeof SECTIONS / sizeof *SECTIONS; i++)
        config_diff_json(cJSON_GetObjectItemCaseSensitive(s, SECTIONS[i]),
                         cJSON_GetObjectItemCaseSensitive(c, SECTIONS[i]), SECTIONS[i], NULL, train, cap);
    cJSON_Delete(s);
    cJSON_Delete(c);
}
