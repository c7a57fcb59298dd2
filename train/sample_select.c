#include "train/sample_select.h"

#include <stdlib.h>

static int before(const sample_cand *a, const sample_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int order(const void *x, const void *y) {
    const sample_cand *a = x, *b = y;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

static void swap(sample_cand *c, int i, int j) {
    sample_cand t = c[i];
    c[i] = c[j];
    c[j] = t;
}

/* The median of c[lo], c[mid], c[hi - 1] in the order. */
static int pivot_of(const sample_cand *c, int lo, int hi) {
    int a = lo, b = lo + (hi - lo) / 2, z = hi - 1;
    if (before(&c[b], &c[a]) != before(&c[b], &c[z]))
        return b;
    if (before(&c[a], &c[b]) != before(&c[a], &c[z]))
        return a;
    return z;
}

/* Partitions c[lo, hi) around a pivot and returns its final index p: c[lo, p) come before it in the order,
 * c[p + 1, hi) after it. *mass gets the sum of w over c[lo, p). */
static int partition(sample_cand *c, int lo, int hi, double *mass) {
    swap(c, pivot_of(c, lo, hi), hi - 1);
    int p = lo;
    double m = 0;
    for (int i = lo; i < hi - 1; i++)
        if (before(&c[i], &c[hi - 1])) {
            m += c[i].w;
            swap(c, i, p++);
        }
    swap(c, p, hi - 1);
    *mass = m;
    return p;
}

void select_count(sample_cand *c, int n, int k) {
    int lo = 0, hi = n;
    double unused;
    while (hi - lo > 1) {
        int p = partition(c, lo, hi, &unused);
        if (k <= p)
            hi = p;
        else if (k > p + 1)
            lo = p + 1;
        else
            break;
    }
    qsort(c, (size_t)k, sizeof *c, order);
}

int select_mass(sample_cand *c, int n, double target) {
    /* c[0, lo) belong to the prefix, c[hi, n) do not; need = target minus the mass of c[0, lo). */
    int lo = 0, hi = n, k = -1;
    double need = target;
    while (k < 0 && lo < hi) {
        double mass;
        int p = partition(c, lo, hi, &mass);
        if (mass >= need) {
            hi = p;
        } else if (mass + c[p].w >= need) {
            k = p + 1;
        } else {
            need -= mass + c[p].w;
            lo = p + 1;
        }
    }
    if (k < 0)
        k = lo;
    qsort(c, (size_t)k, sizeof *c, order);
    return k;
}
