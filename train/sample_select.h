/* Selection in the sampler's order (train/sample.c): token a comes before token b when its logit is
 * larger, or equal with a smaller id, so "the k most likely tokens" and "the most likely tokens up to a
 * probability mass" are defined exactly, ties included. Expected linear time (quickselect with a
 * median-of-three pivot) plus a sort of the selected part. */
#ifndef MT_SAMPLE_SELECT_H
#define MT_SAMPLE_SELECT_H

#include <stdint.h>

typedef struct {
    double w; /* probability, or a weight proportional to it */
    float logit;
    int32_t id;
} sample_cand;

/* Reorders c so that c[0..k) are the first k of the n candidates in the order, sorted (k <= n). */
void select_count(sample_cand *c, int n, int k);

/* Reorders c so that c[0..K) is the shortest prefix of the order whose w sum to at least target (K = n when
 * all of them do not), sorted; returns K. */
int select_mass(sample_cand *c, int n, double target);

#endif
