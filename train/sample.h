/* Drawing the next token from the logits of a vocabulary that tensor parallelism splits by rows (SPEC 4.4):
 * each rank of the group holds the logits of global ids [first, first + n) and the draw is agreed through
 * small collectives, never by gathering the logits. Greedy picks the most likely token (the lowest id among
 * equal logits); otherwise the logits are divided by the temperature, the top_k most likely tokens are kept
 * (top_k > 0), then the smallest set of the most likely ones whose probability reaches top_p (top_p < 1),
 * and a token is drawn from what remains in proportion to its probability, with one uniform number per
 * token from a generator seeded by sampler_seed. The same seed gives the same tokens in every layout (up to
 * double-precision rounding of the probabilities at a boundary), and every rank gets the same token. */
#ifndef MT_SAMPLE_H
#define MT_SAMPLE_H

#include <stdint.h>

#include "parallel/comm.h"

typedef struct {
    double temperature; /* 0: greedy */
    int top_k;          /* 0: no limit; 1: greedy */
    double top_p;       /* in (0, 1]; 1: no limit */
} sample_params;

typedef struct sampler sampler;

/* comm: the tensor-parallel group that splits the vocabulary (COMM_TP), or NULL for one process. Collective
 * over the group. */
sampler *sampler_create(int n, int first, comm_ctx *comm);
void sampler_free(sampler *s);
void sampler_seed(sampler *s, uint64_t seed);

/* The next token given this rank's n logits: the same id on every rank; -1 (on every rank) when some logit
 * is not finite. Collective over the group; allocates nothing. */
int32_t sampler_next(sampler *s, const sample_params *p, const float *logits);

#endif
