#include "config_diff.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static void add(char *out, size_t cap, const char *path) {
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s%s", n ? ", " : "", path);
}

/* Leaves that differ between objects a and b (either side may lack a key). */
static void walk(const cJSON *a, const cJSON *b, const char *prefix, char *out, size_t cap) {
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        for (const cJSON *x = a->child; x; x = x->next) {
            char path[256];
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", x->string);
            walk(x, cJSON_GetObjectItemCaseSensitive(b, x->string), path, out, cap);
        }
        for (const cJSON *y = b->child; y; y = y->next)
            if (!cJSON_HasObjectItem(a, y->string)) {
                char path[256];
                snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", y->string);
                add(out, cap, path);
            }
        return;
    }
    if (!a && !b)
        return;
    if (!a || !b || !cJSON_Compare(a, b, 1))
        add(out, cap, prefix);
}

void config_diff(const char *saved_json, const char *current_json, char *model, char *train, size_t cap) {
    model[0] = train[0] = 0;
    cJSON *s = cJSON_Parse(saved_json ? saved_json : ""), *c = cJSON_Parse(current_json ? current_json : "");
    walk(cJSON_GetObjectItemCaseSensitive(s, "model"), cJSON_GetObjectItemCaseSensitive(c, "model"), "model", model,
         cap);
    static const char *const SECTIONS[] = {"data", "train", "parallel", "threads", "backend"};
    for (size_t i = 0; i < sizeof SECTIONS / sizeof *SECTIONS; i++)
        walk(cJSON_GetObjectItemCaseSensitive(s, SECTIONS[i]), cJSON_GetObjectItemCaseSensitive(c, SECTIONS[i]),
             SECTIONS[i], train, cap);
    cJSON_Delete(s);
    cJSON_Delete(c);
}
