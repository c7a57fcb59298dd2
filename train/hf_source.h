/* The weights of a Hugging Face model folder (SPEC 5.4): DIR/model.safetensors, or the shards that
 * DIR/model.safetensors.index.json names in its weight_map. Headers only are read when opening; tensors
 * are read later, one at a time (st_read_f32). */
#ifndef MT_HF_SOURCE_H
#define MT_HF_SOURCE_H

#include "train/safetensors.h"

typedef struct {
    char *name;
    st_file *file;
    const st_tensor *t;
    int used;
} hf_entry;

typedef struct {
    st_file *files;
    int n_files;
    hf_entry *e; /* sorted by name */
    size_t n;
    char where[4200]; /* the file that lists the tensors (the index, or the single file): named in errors */
} hf_source;

int hf_source_open(hf_source *s, const char *dir, mt_err *err);
void hf_source_close(hf_source *s);

/* The tensor called name, else name without its "transformer." prefix (GPT-2's hub files have none);
 * NULL when neither is there. */
hf_entry *hf_source_find(hf_source *s, const char *name);

#endif
