#include "train/config_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(const char *path, const cJSON *a, const cJSON *b, const config_sides *sides, char *out,
                size_t cap) {
    size_t n = strlen(out);
    const char *sep = n ? ", " : "";
    if (!sides) {
        snprintf(out + n, cap - n, "%s%s", sep, path);
        return;
    }
    char *va = a ? cJSON_PrintUnformatted(a) : NULL, *vb = b ? cJSON_PrintUnformatted(b) : NULL;
    snprintf(out + n, cap - n, "%s%s %s (%s) vs %s (%s)", sep, path, va ? va : "absent", sides->a,
             vb ? vb : "absent", sides->b);
    free(va);
    free(vb);
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
    cJSON *s = cJSON_Parse(saved_json ? saved_json : ""), *c = cJSON_Parse(current_json ? current_json : "");
    config_diff_json(cJSON_GetObjectItemCaseSensitive(s, "model"),
                     cJSON_GetObjectItemCaseSensitive(c, "model"), "model", NULL, model, cap);
    static const char *const SECTIONS[] = {"data", "train", "parallel", "threads", "backend"};
    for (size_t i = 0; i < sizeof SECTIONS / sizeof *SECTIONS; i++)
        config_diff_json(cJSON_GetObjectItemCaseSensitive(s, SECTIONS[i]),
                         cJSON_GetObjectItemCaseSensitive(c, SECTIONS[i]), SECTIONS[i], NULL, train, cap);
    cJSON_Delete(s);
    cJSON_Delete(c);
}
