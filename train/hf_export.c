/* bin/convert hf-export: a checkpoint to an HF model folder (see hf_convert.h). */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/tok.h"
#include "model/params.h"
#include "train/ckpt_stream.h"
#include "train/hf_config.h"
#include "train/hf_convert.h"

enum { STAGE_FLOATS = 1 << 22, MAX_PIECES = 3 };

/* One tensor of the HF folder: the table entries it is made of (GPT-2's c_attn: q, k, v) and its file. */
typedef struct {
    st_tensor t;
    int param[MAX_PIECES], n_params;
    int shard;
} out_tensor;

typedef struct {
    model_config c;
    hf_family fam;
    param_table table;
    out_tensor *out;
    int n_out, n_shards;
    uint64_t total_bytes, overflow;
} plan;

int hf_write_json(const char *path, const cJSON *j, mt_err *err) {
    char tmp[4200], *text = cJSON_Print(j);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = !f || fprintf(f, "%s\n", text) < 0;
    rc |= f && fclose(f);
    free(text);
    if (rc || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return mt_fail(err, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

/* The model config stored in the checkpoint's `config` attribute (its "model" object). */
static int ckpt_model(const char *ckpt, const ckpt_meta *meta, model_config *c, mt_err *err) {
    char where[4200];
    snprintf(where, sizeof where, "%s (attribute config)", ckpt);
    cJSON *root = cJSON_Parse(meta->config_json);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    jcfg_src src = {.file = where};
    int rc = cJSON_IsObject(model) ? model_config_parse(&src, "model", model, c, err)
                                   : mt_fail(err, "%s: no \"model\" object", where);
    cJSON_Delete(root);
    return rc;
}

/* The HF tensors in table order, each gathering the entries that share its name. */
static void list_tensors(plan *p, st_dtype dtype) {
    p->out = mt_calloc((size_t)p->table.n, sizeof *p->out);
    for (int i = 0; i < p->table.n; i++) {
        hf_place pl;
        hf_place_of(p->fam, &p->table.p[i], &pl);
        int k = 0;
        while (k < p->n_out && strcmp(p->out[k].t.name, pl.name))
            k++;
        out_tensor *o = &p->out[k];
        if (k == p->n_out) {
            p->n_out++;
            o->t = (st_tensor){.name = mt_strdup(pl.name), .dtype = dtype, .ndim = pl.ndim};
            memcpy(o->t.shape, pl.shape, sizeof pl.shape);
        }
        CHECK(o->n_params < MAX_PIECES, "HF tensor %s has too many pieces", pl.name);
        o->param[o->n_params++] = i;
    }
}

/* save_pretrained's rule: a file takes tensors in order until the next would pass the limit. */
static void assign_shards(plan *p, uint64_t max_bytes) {
    uint64_t in_shard = 0;
    for (int k = 0; k < p->n_out; k++) {
        uint64_t bytes = st_numel(&p->out[k].t) * st_dtype_size(p->out[k].t.dtype);
        if (in_shard && in_shard + bytes > max_bytes) {
            p->n_shards++;
            in_shard = 0;
        }
        p->out[k].shard = p->n_shards;
        in_shard += bytes;
        p->total_bytes += bytes;
    }
    p->n_shards++;
}

static void shard_name(const plan *p, int s, char *out, size_t cap) {
    if (p->n_shards == 1)
        snprintf(out, cap, "model.safetensors");
    else
        snprintf(out, cap, "model-%05d-of-%05d.safetensors", s + 1, p->n_shards);
}

typedef struct {
    st_writer *w;
    const st_tensor *t;
} write_ctx;

static int write_io(void *ctx, uint64_t first, size_t n, float *buf, mt_err *err) {
    write_ctx *x = ctx;
    return st_write_f32(x->w, x->t, first, n, buf, err);
}

/* One safetensors file: its header, then each tensor's pieces read from the checkpoint one at a time. */
static int write_shard(plan *p, int s, ckpt_reader *r, const char *dir, float *buf, float *stage,
                       mt_err *err) {
    st_tensor *ts = mt_calloc((size_t)p->n_out, sizeof *ts);
    int n = 0;
    for (int k = 0; k < p->n_out; k++)
        if (p->out[k].shard == s)
            ts[n++] = p->out[k].t;
    char name[64], path[4300];
    shard_name(p, s, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    st_writer w;
    int rc = st_create(&w, path, ts, (size_t)n, err), j = 0;
    for (int k = 0; k < p->n_out && !rc; k++) {
        if (p->out[k].shard != s)
            continue;
        write_ctx ctx = {&w, &ts[j++]};
        for (int q = 0; q < p->out[k].n_params && !rc; q++) {
            const param_info *pi = &p->table.p[p->out[k].param[q]];
            hf_place pl;
            hf_place_of(p->fam, pi, &pl);
            rc = ckpt_reader_get(r, pi, buf, err) ||
                 hf_copy(&pl, pi, buf, 1, write_io, &ctx, stage, STAGE_FLOATS, err);
        }
    }
    if (!rc || w.fd >= 0) { /* st_create closes on its own failure */
        p->overflow += w.overflow;
        if (st_finish(&w, rc ? NULL : err))
            rc = -1;
    }
    free(ts);
    return rc ? -1 : 0;
}

static int write_index(const plan *p, const char *dir, mt_err *err) {
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", (double)p->total_bytes);
    cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
    for (int k = 0; k < p->n_out; k++) {
        char name[64];
        shard_name(p, p->out[k].shard, name, sizeof name);
        cJSON_AddStringToObject(map, p->out[k].t.name, name);
    }
    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    int rc = hf_write_json(path, root, err);
    cJSON_Delete(root);
    return rc;
}

static int copy_file(const char *from, const char *to, mt_err *err) {
    size_t len;
    char *data = mt_read_file(from, &len, err);
    if (!data)
        return -1;
    FILE *f = fopen(to, "wb");
    int bad = !f || fwrite(data, 1, len, f) != len;
    bad |= f && fclose(f);
    free(data);
    return bad ? mt_fail(err, "%s: cannot write: %s", to, strerror(errno)) : 0;
}

/* vocab.json and merges.txt: GPT-2's encoder.json and vocab.bpe under HF's names (SPEC 7.1), checked by
 * loading them; not written for a model with fewer rows than the vocabulary has ids. */
static int write_tokenizer(const plan *p, const char *tok_dir, const char *dir, mt_err *err) {
    char enc[4200], bpe[4200], vocab[4300], merges[4300];
    snprintf(enc, sizeof enc, "%s/encoder.json", tok_dir);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", tok_dir);
    tok *tk = tok_load(enc, bpe, err);
    if (!tk)
        return -1;
    int ids = tok_vocab_size(tk);
    tok_free(tk);
    if (ids > p->c.vocab_size) {
        fprintf(
            stderr,
            "convert: note: no vocab.json / merges.txt: the model has %d rows, the GPT-2 vocabulary %d ids\n",
            p->c.vocab_size, ids);
        return 0;
    }
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    return copy_file(enc, vocab, err) || copy_file(bpe, merges, err) ? -1 : 0;
}

static const char *torch_dtype(st_dtype d) {
    return d == ST_BF16 ? "bfloat16" : d == ST_F16 ? "float16" : "float32";
}

static int write_folder(plan *p, ckpt_reader *r, const hf_export_opts *o, const char *dir, mt_err *err) {
    size_t biggest = 0;
    for (int i = 0; i < p->table.n; i++)
        biggest = p->table.p[i].numel > biggest ? p->table.p[i].numel : biggest;
    float *buf = mt_malloc(biggest * sizeof *buf), *stage = mt_malloc(STAGE_FLOATS * sizeof *stage);
    int rc = 0;
    for (int s = 0; s < p->n_shards && !rc; s++)
        rc = write_shard(p, s, r, dir, buf, stage, err);
    free(buf);
    free(stage);
    if (!rc && p->n_shards > 1)
        rc = write_index(p, dir, err);
    if (!rc) {
        char path[4300];
        snprintf(path, sizeof path, "%s/config.json", dir);
        cJSON *cfg = hf_config_export(&p->c, p->fam, torch_dtype(o->dtype));
        rc = hf_write_json(path, cfg, err);
        cJSON_Delete(cfg);
    }
    if (!rc && o->tokenizer_dir)
        rc = write_tokenizer(p, o->tokenizer_dir, dir, err);
    return rc;
}

/* out_dir must be absent or an empty folder: the export never mixes with other files. */
static int check_out_dir(const char *dir, mt_err *err) {
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : mt_fail(err, "%s: exists and is not a readable folder", dir);
    int used = 0;
    for (struct dirent *e; (e = readdir(d)) && !used;)
        used = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return used ? mt_fail(err, "%s: exists and is not empty (hf-export writes a new folder)", dir) : 0;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = fd < 0 || fsync(fd);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Writes the folder as a hidden sibling of out_dir, then renames it into place. */
static int publish(plan *p, ckpt_reader *r, const hf_export_opts *o, const char *out_dir, mt_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.partial-XXXXXX", out_dir);
    if (!mkdtemp(tmp))
        return mt_fail(err, "%s: cannot create a folder beside it: %s", out_dir, strerror(errno));
    int rc = write_folder(p, r, o, tmp, err);
    if (!rc && (fsync_dir(tmp) || rename(tmp, out_dir)))
        rc = mt_fail(err, "%s: cannot rename %s to it: %s", out_dir, tmp, strerror(errno));
    if (rc)
        remove_tree(tmp);
    return rc;
}

int hf_export(const char *ckpt, const char *out_dir, const hf_export_opts *o, mt_err *err) {
    double t0 = mt_now();
    ckpt_meta meta = {0};
    plan p = {0};
    if (check_out_dir(out_dir, err))
        return -1;
    ckpt_reader *r = ckpt_reader_open(ckpt, &meta, err);
    if (!r)
        return -1;
    int rc = ckpt_model(ckpt, &meta, &p.c, err) || hf_family_of(&p.c, ckpt, &p.fam, err) ? -1 : 0;
    if (!rc) {
        if (p.c.loss_vocab < p.c.vocab_size)
            fprintf(stderr,
                    "convert: note: the model was trained with a softmax over its first %d of %d rows; HF's "
                    "covers "
                    "all %d\n",
                    p.c.loss_vocab, p.c.vocab_size, p.c.vocab_size);
        param_table_build(&p.table, &p.c, 1, 0);
        list_tensors(&p, o->dtype);
        assign_shards(&p, o->max_shard_bytes);
        rc = publish(&p, r, o, out_dir, err);
        if (!rc && p.overflow)
            fprintf(stderr, "convert: warning: %llu values beyond the range of %s became infinite\n",
                    (unsigned long long)p.overflow, st_dtype_name(o->dtype));
        if (!rc)
            printf("hf-export: wrote %s: %s, %d tensors in %d file%s, %.3f GB of %s, in %.1f s\n", out_dir,
                   hf_model_type(p.fam), p.n_out, p.n_shards, p.n_shards > 1 ? "s" : "", p.total_bytes / 1e9,
                   torch_dtype(o->dtype), mt_now() - t0);
        for (int k = 0; k < p.n_out; k++)
            free(p.out[k].t.name);
        free(p.out);
        param_table_free(&p.table);
    }
    ckpt_reader_close(r);
    ckpt_meta_free(&meta);
    return rc;
}
