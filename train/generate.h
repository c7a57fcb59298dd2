/* Text generation (bin/generate): a checkpoint's model ready for inference, and completions of one prompt at
 * a time: the prompt in one prefill pass, then one token per decoding step (model_decode, train/sample.h)
 * until the end-of-text token, a stop string, the token budget or the end of the context, with the text of
 * the new tokens streamed while it is produced. */
#ifndef MT_GENERATE_H
#define MT_GENERATE_H

#include <stdio.h>

#include "data/tok.h"
#include "model/model.h"
#include "train/lora_ckpt.h"
#include "train/sample.h"

/* ---------------------------------------------------------------------------------------------- model */

/* The checkpoint behind `path`: a checkpoint file, or a run directory (its ckpt/latest, or the newest
 * checkpoint that verifies) or checkpoint directory; its path into file. Collective over the world. */
int gen_find_checkpoint(const char *path, char *file, size_t cap, comm_ctx *comm, mt_err *err);

/* The model config a checkpoint was trained with (the "model" object of its `config` attribute). */
int gen_checkpoint_config(const char *file, model_config *cfg, long *step, mt_err *err);

/* Whether a checkpoint holds LoRA adapters (info->lora.rank > 0), and then its base: `base` (--base) or the
 * one it names, which must hold the parameters it was trained on. Collective over the world. */
int gen_checkpoint_lora(const char *file, const model_config *cfg, const char *base, lora_ckpt_info *info,
                        comm_ctx *comm, mt_err *err);

/* An inference model for one sequence of up to n_ctx positions on backend o, split over the world's ranks
 * (tensor parallel, tp = world size), with the parameters of the checkpoint file, or for an adapter
 * checkpoint (lora from gen_checkpoint_lora) those of its base with its adapters applied; NULL with err set.
 * Collective over the world. */
model *gen_load_model(const char *file, const model_config *cfg, const lora_ckpt_info *lora, ops *o,
                      comm_ctx *comm, mt_err *err);

/* ---------------------------------------------------------------------------------------------- completions
 */

typedef struct {
    sample_params sample;
    int max_new;             /* new tokens at most (>= 1) */
    uint64_t seed;           /* the sampler's seed for this completion */
    const char *const *stop; /* stop strings (not empty): the text ends before the first occurrence of any */
    int n_stop;
} gen_options;

typedef enum { GEN_EOT, GEN_STOP, GEN_LENGTH, GEN_CONTEXT } gen_end;

typedef struct {
    int prompt_tokens, new_tokens;
    double prompt_ms; /* the prefill pass and the first new token: the time to the first token */
    double decode_ms; /* the decoding steps after it (new_tokens - 1 of them, or none after a stop) */
    int steps;        /* decoding steps */
    gen_end end;
    tok_ids ids;   /* the new tokens, the end-of-text token not included */
    mt_bytes text; /* their text, valid UTF-8, cut before a stop string */
} gen_result;

const char *gen_end_name(gen_end e); /* "eot", "stop", "length", "context" */
void gen_result_free(gen_result *r);

typedef struct generator generator;

/* m: from gen_load_model (B = 1); the tokenizer decodes the new tokens, of which only ids below both the
 * model's loss_vocab and the tokenizer's vocabulary can be drawn. Collective over m's tensor-parallel group.
 */
generator *gen_create(model *m, const tok *tk, comm_ctx *comm);
void gen_free(generator *g);

/* Text as it is decided (valid UTF-8). */
typedef void (*gen_emit_fn)(void *ctx, const char *text, size_t n);

/* A completion of prompt (n ids, 1 <= n < n_ctx, each < vocab_size); emit (may be NULL) gets its text while
 * it is produced, r the whole (r is reset first; zero-initialize it once). Every rank of the group gets the
 * same tokens. -1 with err set when the model produces non-finite logits. */
int gen_run(generator *g, const int32_t *prompt, int n, const gen_options *o, gen_emit_fn emit, void *ctx,
            gen_result *r, mt_err *err);

/* Whether a prompt can be completed: not empty, every id a row of the model, and shorter than its context
 * (a longer prompt is refused, not truncated). what names the prompt in the message. */
int gen_check_prompt(const int32_t *ids, size_t n, const model_config *cfg, const char *what, mt_err *err);

/* ---------------------------------------------------------------------------------------------- prompts */

/* The ids of a text prompt (out is cleared first): the text itself, or with alpaca the Alpaca prompt
 * (SPEC 6.2) for the instruction `text` and `input` (NULL or empty: the template without input). */
void gen_prompt_ids(tok *tk, int alpaca, const mt_bytes *text, const mt_bytes *input, tok_ids *out);

/* The prompts of a batch file (JSON Lines): one object per non-blank line with "prompt" (text) or
 * "prompt_ids" (token ids); with alpaca, "instruction" (or "prompt") and an optional "input" instead. Other
 * fields are ignored. Every prompt is checked (gen_check_prompt); -1 with err naming file:line. */
typedef struct {
    tok_ids *prompts;
    long *lines; /* the line of each prompt */
    int n;
} gen_batch;
int gen_batch_read(const char *path, tok *tk, int alpaca, const model_config *cfg, gen_batch *b, mt_err *err);
void gen_batch_free(gen_batch *b);

/* The output line of a completion: {"line", "prompt_tokens", "new_tokens", "finish_reason" (eot, stop,
 * length, context), "completion" (text), "completion_ids"}. */
void gen_batch_write(FILE *f, long line, const gen_result *r);

#endif
