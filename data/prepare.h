/* bin/prepare for real corpora (DESIGN 6): input sources -> token shards DIR/train/<name>-NNNNN.h5 and
 * DIR/val/<name>-NNNNN.h5. A source is one input file (or, for text, the .txt files of a folder); each
 * source is handled whole by one rank, so output does not depend on the number of ranks. */
#ifndef MT_PREPARE_H
#define MT_PREPARE_H

#include "data/shard_writer.h"
#include "data/tok.h"

/* Why records were skipped (summary counters). */
enum {
    SKIP_JSON,      /* malformed JSON line, or a record that is not an object */
    SKIP_FIELD,     /* a required field missing or not a string */
    SKIP_STREAM,    /* truncated or corrupt .zst stream: the rest of the file */
    SKIP_EMPTY_IN,  /* an input file with no record at all */
    SKIP_EMPTY_DOC, /* a document of no text (not a failure, never stops --strict) */
    SKIP_TOO_LONG,  /* alpaca: the prompt alone reaches --max-tokens */
    SKIP_N
};

typedef struct prep_stats {
    long long docs, val_docs, tokens, train_shards, val_shards, replacements, bytes, truncated;
    long long sources_done; /* sources whose shards are complete */
    long long blank_lines;  /* JSON Lines: lines of whitespace only, skipped */
    long long zst_bytes,
        zst_text; /* the .zst inputs: compressed bytes (in `bytes` too), decompressed bytes */
    long long skipped[SKIP_N];
} prep_stats;

typedef struct {
    const char *out_dir;
    const char *field; /* jsonl */
    long shard_tokens, max_tokens;
    double val_fraction;
    unsigned long long seed;
    int strict;
    tok *tk;
    int vocab_size, eot;
    const char *tmpl_input, *tmpl_no_input; /* alpaca */
} prep_opts;

/* One source being written: its train and val shard sequences. */
typedef struct {
    const prep_opts *o;
    prep_stats *st;
    char name[256], desc[1024];
    int with_mask;
    shard_writer *w[2];
    int n_shards[2];
    int split;       /* split of the current document: 0 train, 1 val */
    long long index; /* index of the current record in the source */
    long doc_start;  /* tokens in the current document's shard before it (for the summary's count) */
    mt_bytes pend;   /* text not tokenized yet */
    tok_ids ids;
    long warnings;
} prep_src;

void prep_src_init(prep_src *s, const prep_opts *o, prep_stats *st, const char *name, const char *desc,
                   int with_mask);
/* Starts record `index` of the source (train or val by hash). */
int prep_doc_begin(prep_src *s, long long index, mt_err *err);
/* Text of the current document (any number of calls; tokenized in pieces cut where GPT-2's
 * pre-tokenization must break anyway, so the result equals tokenizing the whole text at once). */
int prep_doc_text(prep_src *s, const char *text, size_t n, mt_err *err);
int prep_doc_tokens(prep_src *s, const int32_t *ids, const uint8_t *mask, long n, mt_err *err);
/* Ends the document (appending EOT, loss-mask 1, if add_eot); source_name may be NULL. */
int prep_doc_end(prep_src *s, int add_eot, const char *source_name, mt_err *err);
int prep_src_close(prep_src *s, mt_err *err);
void prep_src_abort(prep_src *s);
/* A bad record: counts it and warns (naming file and line); -1 under --strict (err set to the message). */
int prep_bad(prep_src *s, int why, mt_err *err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Progress on stderr (rank 0 only): bytes_done of prep_total_bytes, this rank's input bytes. */
extern int prep_rank;
extern long long prep_total_bytes;
void prep_progress(const prep_stats *st, long long bytes_done, int final);
/* Whether record `index` of source `name` goes to validation. */
int prep_is_val(const char *name, long long index, double fraction, unsigned long long seed);

/* The source processors: 0, 2 for bad input under --strict, or -1 with err set (fatal). */
int prepare_text_json(prep_src *s, const char *path, mt_err *err);
int prepare_text_files(prep_src *s, char **paths, int n, mt_err *err);
int prepare_jsonl(prep_src *s, const char *path, mt_err *err);
int prepare_alpaca(prep_src *s, const char *path, mt_err *err);
/* The Alpaca prompt templates into o: SPEC 6.2's when path is NULL, else those of the template file path
 * (read into v, which the caller frees); a one-line error naming the file and key otherwise. */
int prep_alpaca_templates(prep_opts *o, const char *path, mt_bytes v[2], mt_err *err);

#endif
