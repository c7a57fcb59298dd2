/* bin/generate CKPT_OR_RUN_DIR [options]: completions from a checkpoint, in one process or under mpirun (the
 * model split over the ranks by tensor parallelism), on the CPU or the CUDA backend. Rank 0 reads stdin and
 * writes every output; all ranks read the same files and reach the same decisions. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/backend.h"
#include "model/ops_sizer.h"
#include "parallel/comm_backend.h"
#include "train/gen_args.h"
#include "train/generate.h"

/* ---------------------------------------------------------------------------------------------- session */

typedef struct {
    gen_args opt;
    comm_ctx comm;
    int rank;
    tok *tk;
    char file[4300]; /* the checkpoint */
    long step;
    model_config cfg;
    lora_ckpt_info lora; /* an adapter checkpoint's LoRA config and base (rank 0: none) */
    tok_ids single;      /* --prompt, --prompt-file */
    gen_batch batch;
    FILE *out; /* rank 0: OUT.tmp of --out */
    char out_tmp[4300];
    ops *o;
    model *m;
    generator *g;
    gen_options gen;
    gen_result r;
    long completions; /* so far: completion i uses seed + i */
    /* what the next report covers */
    long prompt_tokens, new_tokens, steps, n_done;
    double prompt_ms, decode_ms;
} session;

static int agree(session *s, int failed, mt_err *err) { return comm_agree(&s->comm, failed, err); }

static tok *load_tokenizer(const char *dir, mt_err *err) {
    char def[4096], enc[4200], bpe[4200];
    if (!dir) {
        const char *cache = getenv("MESHTRAIN_CACHE");
        snprintf(def, sizeof def, "%s/gpt2", cache && *cache ? cache : ".cache");
        dir = def;
    }
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", dir);
    return tok_load(enc, bpe, err);
}

/* The ids of a prompt's text (a --prompt, a file, a line of stdin). */
static void text_prompt(session *s, const char *text, size_t n, tok_ids *ids) {
    mt_bytes t = {.data = (char *)text, .n = n}, in = {0};
    if (s->opt.input)
        in = (mt_bytes){.data = (char *)s->opt.input, .n = strlen(s->opt.input)};
    gen_prompt_ids(s->tk, s->opt.alpaca, &t, &in, ids);
}

/* --prompt or --prompt-file, read and checked (every rank reads the same file). */
static int single_prompt(session *s, mt_err *err) {
    size_t n = 0;
    char *file = NULL;
    const char *text = s->opt.prompt;
    if (s->opt.prompt_file && !(text = file = mt_read_file(s->opt.prompt_file, &n, err)))
        return -1;
    if (!file)
        n = strlen(text);
    text_prompt(s, text, n, &s->single);
    free(file);
    return gen_check_prompt(s->single.ids, s->single.n, &s->cfg,
                            s->opt.prompt_file ? s->opt.prompt_file : "--prompt", err);
}

/* --out OUT is written as OUT.tmp (by rank 0), renamed when every completion is in it. */
static int open_out(session *s, mt_err *err) {
    snprintf(s->out_tmp, sizeof s->out_tmp, "%s.tmp", s->opt.out);
    if (s->rank == 0 && !(s->out = fopen(s->out_tmp, "w")))
        return mt_fail(err, "%s: cannot write: %s", s->out_tmp, strerror(errno));
    return 0;
}

/* Everything that can be bad input, before the model is loaded: the tokenizer, the checkpoint and its
 * config, the prompts. */
static int check_inputs(session *s, mt_err *err) {
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (comm_init(&s->comm, MPI_COMM_WORLD, world, err))
        return -1;
    s->rank = s->comm.rank[COMM_WORLD];
    s->tk = load_tokenizer(s->opt.tokdir, err);
    if (agree(s, !s->tk, err) || gen_find_checkpoint(s->opt.ckpt, s->file, sizeof s->file, &s->comm, err))
        return -1;
    char why[200];
    int failed = gen_checkpoint_config(s->file, &s->cfg, &s->step, err) ||
                 gen_checkpoint_lora(s->file, &s->cfg, s->opt.base, &s->lora, &s->comm, err);
    if (!failed && model_tp_problem(&s->cfg, world, why, sizeof why))
        failed = mt_fail(err, "%s: %s (mpirun -n K splits the model over K ranks)", s->file, why);
    if (!failed && s->opt.batch)
        failed =
            gen_batch_read(s->opt.batch, s->tk, s->opt.alpaca, &s->cfg, &s->batch, err) || open_out(s, err);
    else if (!failed && (s->opt.prompt || s->opt.prompt_file))
        failed = single_prompt(s, err);
    return agree(s, failed, err);
}

/* Bytes per rank the inference model will allocate, counted before anything is allocated. */
static double model_gib(const model_config *cfg, const lora_config *lc, ops_dtype act, comm_ctx *comm) {
    ops *sizer = ops_sizer_create(act);
    model_layout L = comm_model_layout(comm);
    model *m = model_create_infer_lora(cfg, lc, sizer, 1, cfg->n_ctx, &L);
    double gib = (double)ops_sizer_bytes(sizer) / (1 << 30);
    model_free(m);
    sizer->destroy(sizer);
    return gib;
}

static int load(session *s, mt_err *err) {
    s->o = backend_create(s->opt.backend, (int)s->opt.threads, err);
    if (agree(s, !s->o, err) || agree(s, comm_attach_backend(&s->comm, s->o, err), err))
        return -1;
    double gib = model_gib(&s->cfg, &s->lora.lora, s->o->act_dtype, &s->comm);
    if (!(s->m = gen_load_model(s->file, &s->cfg, &s->lora, s->o, &s->comm, err)))
        return -1;
    s->g = gen_create(s->m, s->tk, &s->comm);
    s->gen = (gen_options){.sample = {s->opt.temperature, (int)s->opt.top_k, s->opt.top_p},
                           .max_new = (int)s->opt.max_new,
                           .stop = s->opt.stop,
                           .n_stop = s->opt.n_stop};
    if (s->rank == 0)
        fprintf(stderr,
                "generate: %s (step %ld): model %s, backend %s, %d threads, tp %d, context %d tokens, %.3f "
                "GiB per "
                "rank\n",
                s->file, s->step, s->cfg.name, s->o->name, (int)s->opt.threads, s->comm.size[COMM_TP],
                s->cfg.n_ctx, gib);
    return 0;
}

static void teardown(session *s) {
    if (s->out) { /* stopped before the end: OUT stays as it was */
        fclose(s->out);
        remove(s->out_tmp);
    }
    gen_result_free(&s->r);
    gen_free(s->g);
    model_free(s->m);
    if (s->o)
        s->o->destroy(s->o);
    tok_ids_free(&s->single);
    gen_batch_free(&s->batch);
    tok_free(s->tk);
    comm_free(&s->comm);
    free(s->opt.stop);
}

/* ---------------------------------------------------------------------------------------------- completions
 */

static void print_text(void *ctx, const char *text, size_t n) {
    (void)ctx;
    fwrite(text, 1, n, stdout);
    fflush(stdout);
}

/* The final line: "prompt P tokens, N new tokens, prompt X ms, Y ms per new token, Z tokens/s" over the
 * completions since the last report (prompt ms: prefill and the first token; per new token: each
 * decoding step after it). */
static void report(session *s, const char *what) {
    char per[80] = "no decoding step";
    if (s->steps)
        snprintf(per, sizeof per, "%.2f ms per new token, %.1f tokens/s", s->decode_ms / s->steps,
                 1e3 * s->steps / s->decode_ms);
    if (s->rank == 0)
        fprintf(stderr, "generate: %sprompt %ld tokens, %ld new tokens, prompt %.1f ms, %s\n", what,
                s->prompt_tokens, s->new_tokens, s->prompt_ms, per);
    s->prompt_tokens = s->new_tokens = s->steps = s->n_done = 0;
    s->prompt_ms = s->decode_ms = 0;
}

/* The completion of checked ids, streamed to stdout by rank 0 when stream is set. */
static int complete(session *s, const tok_ids *ids, int stream, mt_err *err) {
    s->gen.seed = (uint64_t)s->opt.seed + (uint64_t)s->completions++;
    int rc = gen_run(s->g, ids->ids, (int)ids->n, &s->gen, stream && s->rank == 0 ? print_text : NULL, NULL,
                     &s->r, err);
    s->prompt_tokens += s->r.prompt_tokens;
    s->new_tokens += s->r.new_tokens;
    s->steps += s->r.steps;
    s->prompt_ms += s->r.prompt_ms;
    s->decode_ms += s->r.decode_ms;
    s->n_done++;
    if (!rc && stream && s->rank == 0)
        print_text(NULL, "\n", 1);
    return rc ? MT_EXIT_INTERNAL : MT_EXIT_OK;
}

/* A line of stdin on every rank (rank 0 reads it, without its newline); -1 at the end. */
static long next_line(session *s, char **line, size_t *cap) {
    long long n = -1;
    if (s->rank == 0) {
        if (isatty(STDIN_FILENO))
            fprintf(stderr, "> ");
        ssize_t k = getline(line, cap, stdin);
        n = k > 0 && (*line)[k - 1] == '\n' ? k - 1 : k;
    }
    comm_broadcast_host(&s->comm, COMM_WORLD, &n, sizeof n, 0);
    if (n >= 0 && (size_t)n + 1 > *cap) {
        *line = realloc(*line, (size_t)n + 1);
        CHECK(*line, "out of memory");
        *cap = (size_t)n + 1;
    }
    if (n >= 0)
        comm_broadcast_host(&s->comm, COMM_WORLD, *line, (size_t)n, 0);
    return (long)n;
}

/* No prompt option: one prompt per line of stdin until its end; an empty line is skipped, a bad prompt is
 * reported and skipped. */
static int run_interactive(session *s, mt_err *err) {
    char *line = NULL;
    size_t cap = 0;
    tok_ids ids = {0};
    long n;
    int rc = MT_EXIT_OK;
    while (!rc && (n = next_line(s, &line, &cap)) >= 0) {
        if (n == 0)
            continue;
        text_prompt(s, line, (size_t)n, &ids);
        mt_err bad;
        if (gen_check_prompt(ids.ids, ids.n, &s->cfg, "stdin", &bad)) {
            if (s->rank == 0)
                fprintf(stderr, "generate: %s\n", bad.msg);
            continue;
        }
        if (!(rc = complete(s, &ids, 1, err)))
            report(s, "");
    }
    free(line);
    tok_ids_free(&ids);
    return rc;
}

/* --batch-file IN --out OUT: a line of OUT per prompt, in order. */
static int run_batch(session *s, mt_err *err) {
    int rc = MT_EXIT_OK;
    for (int i = 0; i < s->batch.n && !rc; i++) {
        rc = complete(s, &s->batch.prompts[i], 0, err);
        if (!rc && s->out) {
            gen_batch_write(s->out, s->batch.lines[i], &s->r);
            fflush(s->out);
        }
    }
    int bad_write = 0;
    if (s->out) {
        bad_write = fclose(s->out) != 0;
        s->out = NULL;
        if (rc || bad_write)
            remove(s->out_tmp);
        else
            bad_write = rename(s->out_tmp, s->opt.out) != 0;
    }
    if (bad_write && !rc)
        mt_fail(err, "%s: cannot write: %s", s->opt.out, strerror(errno));
    if (agree(s, bad_write && !rc, err) && !rc)
        rc = MT_EXIT_BAD_INPUT;
    if (!rc) {
        char what[64];
        snprintf(what, sizeof what, "%ld completions, ", s->n_done);
        report(s, what);
    }
    return rc;
}

static int run(session *s, mt_err *err) {
    if (check_inputs(s, err) || load(s, err))
        return MT_EXIT_BAD_INPUT;
    if (s->opt.batch)
        return run_batch(s, err);
    if (!s->single.n)
        return run_interactive(s, err);
    int rc = complete(s, &s->single, 1, err);
    if (!rc)
        report(s, "");
    return rc;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    session s = {0};
    mt_err err = {{0}};
    int rc = gen_parse_args(argc, argv, &s.opt, &err);
    if (rc == 1 && rank == 0)
        gen_usage(stdout);
    rc = rc == 1 ? MT_EXIT_OK : rc ? MT_EXIT_BAD_INPUT : run(&s, &err);
    if (rc && rank == 0)
        fprintf(stderr, "generate: %s\n", err.msg);
    teardown(&s);
    MPI_Finalize();
    return rc;
}
