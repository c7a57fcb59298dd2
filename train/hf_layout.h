/* Where each tensor of the parameter table (model/params.h) lives in a Hugging Face model file (SPEC
 * 5.1-5.3): its HF name, orientation and, for GPT-2's fused c_attn, its column block; and the copy
 * between a project tensor and its place in an HF tensor. Only the names HF spells differently are
 * listed (one table for the three families); every other tensor keeps the project's name. */
#ifndef MT_HF_LAYOUT_H
#define MT_HF_LAYOUT_H

#include <stdint.h>

#include "model/params.h"

typedef enum { HF_GPTJ, HF_GPT_NEO, HF_GPT2, HF_N_FAMILIES } hf_family;

/* HF's model_type: "gptj", "gpt_neo", "gpt2". */
const char *hf_model_type(hf_family f);

/* A project tensor's place in an HF tensor. The HF tensor is seen as a row-major matrix [rows, cols]
 * (a 1-D tensor is one row); the project tensor fills columns [slot * width, (slot + 1) * width) of it,
 * as it is (width = its columns) or transposed (GPT-2's Conv1D [in, out]; width = its rows). */
typedef struct {
    char name[128]; /* as save_pretrained writes it: "transformer." + name, except lm_head.* */
    int slot, n_slots, transposed;
    int ndim;
    uint64_t shape[2]; /* of the whole HF tensor */
} hf_place;

void hf_place_of(hf_family f, const param_info *p, hf_place *out);

/* Whether name is one of the attention-mask buffers HF files carry besides the parameters (SPEC 5.1-5.3:
 * attn.bias, attn.masked_bias, and GPT-Neo's attn.attention.bias / .masked_bias). */
int hf_is_mask_buffer(const char *name);

/* Reads (import) or writes (export) n consecutive elements of the HF tensor, starting at row-major
 * element `first`, from or to buf. */
typedef int (*hf_io_fn)(void *ctx, uint64_t first, size_t n, float *buf, mt_err *err);

/* Copies between the project tensor p (its global shape, row-major in data) and its place in the HF
 * tensor, through io: import fills data, export reads it. stage (stage_n floats, at least the
 * project tensor's rows) holds blocks of transposed rows. */
int hf_copy(const hf_place *pl, const param_info *p, float *data, int to_hf, hf_io_fn io, void *ctx,
            float *stage, size_t stage_n, mt_err *err);

#endif
