/* The sampler's paths. Collectives carry host doubles; a candidate travels as two (logit, id: exact in a
 * double), and every rank then runs the same selection on the same gathered data, so all reach the same
 * token. Probabilities are formed in double from max-subtracted exponentials. */
#include "train/sample.h"

#include <math.h>
#include <stdlib.h>

#include "train/sample_select.h"

struct sampler {
    int n, first, n_max; /* n_max: the largest n of the group */
    comm_ctx *comm;
    int size; /* ranks sharing the vocabulary */
    uint64_t rng;
    sample_cand *local, *all; /* n_max, size * n_max */
    double *send, *recv;      /* packed candidates: 2 * n_max, 2 * size * n_max */
};

sampler *sampler_create(int n, int first, comm_ctx *comm) {
    sampler *s = mt_calloc(1, sizeof *s);
    s->n = n;
    s->first = first;
    s->comm = comm;
    s->size = comm ? comm->size[COMM_TP] : 1;
    double most = n;
    if (comm)
        comm_allreduce_host(comm, COMM_TP, COMM_MAX, &most, 1);
    s->n_max = (int)most > 1 ? (int)most : 1;
    size_t cap = (size_t)s->size * (size_t)s->n_max;
    s->local = mt_malloc((size_t)s->n_max * sizeof *s->local);
    s->all = mt_malloc(cap * sizeof *s->all);
    s->send = mt_malloc(2 * (size_t)s->n_max * sizeof *s->send);
    s->recv = mt_malloc(2 * cap * sizeof *s->recv);
    return s;
}

void sampler_free(sampler *s) {
    if (!s)
        return;
    free(s->local);
    free(s->all);
    free(s->send);
    free(s->recv);
    free(s);
}

/* splitmix64's output function: neighbouring seeds start unrelated streams. */
static uint64_t mix64(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void sampler_seed(sampler *s, uint64_t seed) { s->rng = mix64(seed + 0x632be59bd9b4e019ULL); }

/* splitmix64 -> a uniform double in [0, 1) with 53 random bits */
static double uniform(sampler *s) {
    return (double)(mix64(s->rng += 0x9e3779b97f4a7c15ULL) >> 11) * 0x1.0p-53;
}

/* The largest logit of the group; +inf when any rank holds a non-finite one. */
static double group_max(sampler *s, const float *logits) {
    double mx = -INFINITY;
    for (int i = 0; i < s->n; i++)
        mx = !isfinite(logits[i]) ? INFINITY : logits[i] > mx ? logits[i] : mx;
    if (s->comm)
        comm_allreduce_host(s->comm, COMM_TP, COMM_MAX, &mx, 1);
    return mx;
}

/* Gathers every rank's k candidates (padded with id -1) into s->all; returns how many are real. */
static int gather(sampler *s, const sample_cand *mine, int k, int pad) {
    for (int i = 0; i < pad; i++) {
        s->send[2 * i] = i < k ? mine[i].logit : -INFINITY;
        s->send[2 * i + 1] = i < k ? mine[i].id : -1;
    }
    if (s->comm)
        comm_allgather_host(s->comm, COMM_TP, s->send, s->recv, 2 * pad);
    else
        for (int i = 0; i < 2 * pad; i++)
            s->recv[i] = s->send[i];
    int n = 0;
    for (int i = 0; i < s->size * pad; i++)
        if (s->recv[2 * i + 1] >= 0)
            s->all[n++] = (sample_cand){.logit = (float)s->recv[2 * i], .id = (int32_t)s->recv[2 * i + 1]};
    return n;
}

/* Sum over the group of a per-rank value, in rank order: the same bits on every rank. */
static double group_sum(sampler *s, double mine) {
    if (!s->comm)
        return mine;
    comm_allgather_host(s->comm, COMM_TP, &mine, s->recv, 1);
    double total = 0;
    for (int r = 0; r < s->size; r++)
        total += s->recv[r];
    return total;
}

static int32_t greedy(sampler *s, const float *logits) {
    sample_cand best = {.logit = -INFINITY, .id = -1};
    for (int i = 0; i < s->n; i++)
        if (logits[i] > best.logit)
            best = (sample_cand){.logit = logits[i], .id = s->first + i};
    int n = gather(s, &best, best.id >= 0, 1);
    select_count(s->all, n, 1);
    return s->all[0].id;
}

/* A token drawn from c[0..n) (sorted in the order) in proportion to w. */
static int32_t draw(sampler *s, const sample_cand *c, int n) {
    double total = 0;
    for (int i = 0; i < n; i++)
        total += c[i].w;
    double target = uniform(s) * total, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += c[i].w;
        if (cum > target)
            return c[i].id;
    }
    return c[n - 1].id; /* rounding: target at the very top */
}

/* Weights exp((logit - mx) / t) / z of c[0..n). */
static void weigh(sample_cand *c, int n, double mx, double t, double z) {
    for (int i = 0; i < n; i++)
        c[i].w = exp((c[i].logit - mx) / t) / z;
}

/* top_k: each rank's k best, gathered; the group's k best; then top_p among them. */
static int32_t top_k(sampler *s, const sample_params *p, const float *logits) {
    /* a rank sends at most its top_k best, padded to the same count on every rank */
    int pad = p->top_k < s->n_max ? p->top_k : s->n_max, mine = pad < s->n ? pad : s->n;
    for (int i = 0; i < s->n; i++)
        s->local[i] = (sample_cand){.logit = logits[i], .id = s->first + i};
    select_count(s->local, s->n, mine);
    int n = gather(s, s->local, mine, pad), k = p->top_k < n ? p->top_k : n;
    select_count(s->all, n, k);
    weigh(s->all, k, s->all[0].logit, p->temperature, 1.0);
    if (p->top_p < 1) {
        double z = 0;
        for (int i = 0; i < k; i++)
            z += s->all[i].w;
        for (int i = 0; i < k; i++)
            s->all[i].w /= z;
        k = select_mass(s->all, k, p->top_p);
    }
    return draw(s, s->all, k);
}

/* top_p over the whole vocabulary: every token of the group's nucleus is in its own rank's local nucleus
 * (the tokens before it locally are a subset of those before it in the group, so their probability is
 * below top_p too); the local nuclei are gathered and the group's nucleus selected from them. */
static int32_t top_p(sampler *s, const sample_params *p, const float *logits, double mx) {
    double local = 0;
    for (int i = 0; i < s->n; i++) {
        double w = exp((logits[i] - mx) / p->temperature);
        s->local[i] = (sample_cand){.w = w, .logit = logits[i], .id = s->first + i};
        local += w;
    }
    double z = group_sum(s, local);
    for (int i = 0; i < s->n; i++)
        s->local[i].w /= z;
    int mine = select_mass(s->local, s->n, p->top_p);
    double most = mine;
    if (s->comm)
        comm_allreduce_host(s->comm, COMM_TP, COMM_MAX, &most, 1);
    int n = gather(s, s->local, mine, (int)most);
    weigh(s->all, n, mx, p->temperature, z);
    return draw(s, s->all, select_mass(s->all, n, p->top_p));
}

/* The rank whose shard holds the cumulative mass `target` (ranks in id order, masses in s->recv or, alone,
 * `local`): the first whose shard ends above it, or by rounding the last with any mass; *below gets the
 * mass of the shards before it. */
static int owner_of(sampler *s, double local, double target, double *below) {
    int owner = -1;
    double cum = 0;
    for (int r = 0; r < s->size; r++) {
        double mass = s->comm ? s->recv[r] : local;
        if (mass > 0) {
            owner = r;
            *below = cum;
            if (cum + mass > target)
                break;
        }
        cum += mass;
    }
    return owner;
}

/* Plain sampling at a temperature: the inverse of the cumulative distribution over the ranks' shards in id
 * order. Every rank learns each shard's mass; the rank whose range holds the uniform draw walks its shard,
 * and the group takes its pick. */
static int32_t plain(sampler *s, const sample_params *p, const float *logits, double mx) {
    double local = 0;
    for (int i = 0; i < s->n; i++)
        local += exp((logits[i] - mx) / p->temperature);
    double target = uniform(s) * group_sum(s, local), below = 0;
    double pick = -1;
    if (owner_of(s, local, target, &below) == (s->comm ? s->comm->rank[COMM_TP] : 0)) {
        double cum = 0;
        int last = -1;
        for (int i = 0; i < s->n && pick < 0; i++) {
            double w = exp((logits[i] - mx) / p->temperature);
            cum += w;
            last = w > 0 ? i : last;
            if (w > 0 && cum > target - below)
                pick = s->first + i;
        }
        if (pick < 0) /* rounding: the draw at the very top of the shard */
            pick = s->first + last;
    }
    if (s->comm)
        comm_allreduce_host(s->comm, COMM_TP, COMM_MAX, &pick, 1);
    return (int32_t)pick;
}

int32_t sampler_next(sampler *s, const sample_params *p, const float *logits) {
    double mx = group_max(s, logits);
    if (!isfinite(mx))
        return -1;
    if (p->temperature <= 0 || p->top_k == 1)
        return greedy(s, logits);
    if (p->top_k > 0)
        return top_k(s, p, logits);
    if (p->top_p < 1)
        return top_p(s, p, logits, mx);
    return plain(s, p, logits, mx);
}
