/* Loading encoder.json + vocab.bpe, encode (sanitize, pre-tokenize, BPE) and decode (SPEC 7). */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "data/tok_internal.h"

/* SPEC 7.2: printable bytes map to themselves; the other 68, in order, to U+0100.. U+0143. inverse gets
 * the byte of each of those code points, -1 for the others. */
static void unicode_to_byte(int16_t inverse[0x144]) {
    uint32_t next = 0x100;
    memset(inverse, 0xFF, 0x144 * sizeof *inverse);
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        inverse[printable ? (uint32_t)b : next++] = (int16_t)b;
    }
}

/* Converts a token string (UTF-8 of byte-alphabet code points) to its bytes; -1 if a character is not in
 * the alphabet. out has room for strlen(s) bytes. */
static long token_string_bytes(const char *s, const int16_t inverse[0x144], uint8_t *out) {
    const uint8_t *p = (const uint8_t *)s;
    long n = 0;
    while (*p) {
        uint32_t cp;
        if (p[0] < 0x80)
            cp = *p++;
        else if ((p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80)
            cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F), p += 2;
        else
            return -1;
        if (cp >= 0x144 || inverse[cp] < 0)
            return -1;
        out[n++] = (uint8_t)inverse[cp];
    }
    return n;
}

/* Byte string -> id, used while loading. */
typedef struct {
    const uint8_t *bytes;
    uint32_t len;
    int32_t id;
} string_slot;

typedef struct {
    string_slot *slots;
    size_t mask;
} string_map;

static string_slot *string_map_slot(string_map *m, const uint8_t *bytes, size_t len) {
    for (size_t i = tok_hash_bytes(bytes, len) & m->mask;; i = (i + 1) & m->mask) {
        string_slot *s = &m->slots[i];
        if (!s->bytes || (s->len == len && !memcmp(s->bytes, bytes, len)))
            return s;
    }
}

static int32_t string_map_get(string_map *m, const uint8_t *bytes, size_t len) {
    string_slot *s = string_map_slot(m, bytes, len);
    return s->bytes ? s->id : -1;
}

static int load_encoder(tok *t, const char *path, string_map *map, mt_err *err) {
    size_t len;
    char *text = mt_read_file(path, &len, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mt_fail(err, "%s: not a JSON object of token -> id", path);
    }
    int16_t inverse[0x144];
    unicode_to_byte(inverse);
    int count = cJSON_GetArraySize(root), max_id = -1, rc = 0;
    for (cJSON *e = root->child; e; e = e->next)
        if (cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble < 1e8 && e->valueint > max_id)
            max_id = e->valueint;
    t->vocab_size = max_id + 1;
    t->token_bytes = mt_calloc((size_t)t->vocab_size + 1, sizeof *t->token_bytes);
    t->token_len = mt_calloc((size_t)t->vocab_size + 1, sizeof *t->token_len);
    size_t cap = 1;
    while (cap < 2 * (size_t)count + 2)
        cap *= 2;
    map->slots = mt_calloc(cap, sizeof *map->slots);
    map->mask = cap - 1;
    for (cJSON *e = root->child; e && !rc; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)e->valueint || e->valueint < 0) {
            rc = mt_fail(err, "%s: token \"%s\": id is not a non-negative integer", path, e->string);
            break;
        }
        int id = e->valueint;
        uint8_t *bytes = mt_malloc(strlen(e->string) + 1);
        long n = token_string_bytes(e->string, inverse, bytes);
        if (n <= 0) {
            free(bytes);
            rc = mt_fail(err, "%s: token \"%s\" is empty or has a character outside the byte alphabet", path,
                         e->string);
        } else if (t->token_bytes[id]) {
            free(bytes);
            rc = mt_fail(err, "%s: id %d is used twice", path, id);
        } else {
            string_slot *s = string_map_slot(map, bytes, (size_t)n);
            if (s->bytes)
                rc = mt_fail(err, "%s: token \"%s\" appears twice", path, e->string);
            t->token_bytes[id] = (char *)bytes, t->token_len[id] = (uint32_t)n;
            if (!s->bytes)
                *s = (string_slot){bytes, (uint32_t)n, id};
        }
    }
    cJSON_Delete(root);
    if (rc)
        return rc;
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        t->byte_id[b] = string_map_get(map, &byte, 1);
        if (t->byte_id[b] < 0)
            return mt_fail(err, "%s: no token for byte 0x%02X", path, b);
    }
    t->eot = string_map_get(map, (const uint8_t *)"<|endoftext|>", 13);
    return 0;
}

/* vocab.bpe: the first line (version) is dropped, as openai's loader does; then "A B" per line. */
static int load_merges(tok *t, const char *path, string_map *map, mt_err *err) {
    size_t len;
    char *text = mt_read_file(path, &len, err);
    if (!text)
        return -1;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    size_t cap = 1;
    while (cap < 2 * lines + 2)
        cap *= 2;
    t->merges = mt_malloc(cap * sizeof *t->merges);
    memset(t->merges, 0xFF, cap * sizeof *t->merges);
    t->merge_mask = cap - 1;
    int16_t inverse[0x144];
    unicode_to_byte(inverse);
    uint8_t *buf = mt_malloc(2 * len + 2);
    char *line = strchr(text, '\n');
    uint32_t rank = 0;
    int rc = 0;
    for (size_t lineno = 2; line && !rc; lineno++) {
        line++;
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (n) {
            char *space = strchr(line, ' ');
            if (!space || strchr(space + 1, ' ')) {
                rc = mt_fail(err, "%s:%zu: expected two space-separated symbols", path, lineno);
                break;
            }
            *space = 0;
            long na = token_string_bytes(line, inverse, buf);
            long nb = na > 0 ? token_string_bytes(space + 1, inverse, buf + na) : -1;
            int32_t a = na > 0 ? string_map_get(map, buf, (size_t)na) : -1;
            int32_t b = nb > 0 ? string_map_get(map, buf + na, (size_t)nb) : -1;
            int32_t ab = a >= 0 && b >= 0 ? string_map_get(map, buf, (size_t)(na + nb)) : -1;
            if (ab < 0) {
                rc = mt_fail(err, "%s:%zu: merge \"%s %s\" uses or makes a token missing from the encoder",
                             path, lineno, line, space + 1);
                break;
            }
            /* A repeated rule keeps its last rank, as openai's dict(zip(merges, range)) does. */
            uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
            uint64_t h = key * 0x9E3779B97F4A7C15ULL;
            size_t i = (h >> 32) & t->merge_mask;
            while (t->merges[i].key != UINT64_MAX && t->merges[i].key != key)
                i = (i + 1) & t->merge_mask;
            t->merges[i] = (tok_merge_slot){key, rank++, ab};
        }
        line = end;
    }
    free(buf);
    free(text);
    return rc;
}

tok *tok_load(const char *encoder_json_path, const char *vocab_bpe_path, mt_err *err) {
    tok *t = mt_calloc(1, sizeof *t);
    string_map map = {0};
    int rc = load_encoder(t, encoder_json_path, &map, err);
    if (!rc)
        rc = load_merges(t, vocab_bpe_path, &map, err);
    free(map.slots);
    if (rc) {
        tok_free(t);
        return NULL;
    }
    return t;
}

void tok_free(tok *t) {
    if (!t)
        return;
    if (t->token_bytes)
        for (int32_t i = 0; i < t->vocab_size; i++)
            free(t->token_bytes[i]);
    free(t->token_bytes), free(t->token_len), free(t->merges);
    tok_cache_free(t);
    free(t);
}

int32_t tok_eot(const tok *t) { return t->eot; }
int32_t tok_vocab_size(const tok *t) { return t->vocab_size; }

typedef struct {
    tok *t;
    tok_ids *out;
} encode_ctx;

static void encode_piece(void *ctx, const uint8_t *piece, size_t len) {
    encode_ctx *c = ctx;
    tok_bpe_piece(c->t, piece, len, c->out);
}

void tok_encode(tok *t, const char *text, size_t len, tok_ids *out, size_t *replacements) {
    size_t clean_len = len;
    char *clean = tok_utf8_sanitize(text, len, &clean_len, replacements);
    encode_ctx ctx = {t, out};
    tok_pretokenize((const uint8_t *)(clean ? clean : text), clean_len, encode_piece, &ctx);
    free(clean);
}

int tok_decode(const tok *t, const int32_t *ids, size_t n, mt_bytes *out, mt_err *err) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab_size || !t->token_bytes[id])
            return mt_fail(err, "token %zu: id %d is not in the vocabulary", i, (int)id);
        mt_bytes_append(out, t->token_bytes[id], t->token_len[id]);
    }
    return 0;
}

void tok_ids_free(tok_ids *ids) {
    free(ids->ids);
    *ids = (tok_ids){0};
}
