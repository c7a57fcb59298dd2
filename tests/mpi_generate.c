/* Inference and sampling under tensor parallelism against one process, run by tests/test_generate.sh as
 * `mpirun -n 2 build/tests/mpi_generate`:
 *  - a checkpoint of a tiny GPT-J (a local layer, rotary) and a tiny GPT-Neo with perturbed random weights
 *    is loaded by each rank twice: whole (one process) and split tp=2 (ckpt_load into the sharded inference
 *    model); the prefill and 25 decoding steps give each rank's vocabulary rows of the whole model's logits
 *    to 1e-5;
 *  - the sampler over a vocabulary split unevenly (600 + 401 ids): greedy, plain, top-p, top-k and top-k with
 *    top-p draw exactly the single-process sampler's tokens for the same seed (2000 draws each; probabilities
 *    are formed in double, so a boundary case where rounding could decide has probability ~1e-13 per draw),
 *    both ranks get the same tokens, and a NaN on one rank gives -1 on both. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "tests/test_model.h"
#include "tests/testutil.h"
#include "train/ckpt.h"
#include "train/sample.h"

static int rank;

/* A check decided on every rank: passes when it passes everywhere; rank 0 reports it. */
static void check_all(int ok, const char *name, const char *fmt, double value) {
    int all = ok;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0)
        tu_check(all, name, fmt, value);
}

/* Rank 0 alone draws the checkpoint's perturbation: the ranks' generators continue from its state. */
static void sync_rng(void) { MPI_Bcast(&tu_state, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD); }

static double max_all(double x) {
    double m = isnan(x) ? INFINITY : x;
    MPI_Allreduce(MPI_IN_PLACE, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

/* ---------------------------------------------------------------------------------------------- inference */

/* Writes a checkpoint of perturbed random weights into dir (rank 0) for every rank to load. */
static void write_checkpoint(const model_config *cfg, const char *dir, uint64_t seed) {
    if (rank == 0) {
        ops *o = ops_cpu_create(1);
        model *m = model_create(cfg, o, 1, 8);
        model_init_params(m, seed);
        tu_perturb_params(m);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "model", model_config_to_json(cfg));
        char *json = cJSON_PrintUnformatted(j);
        ckpt_meta meta = {.step = 1, .world_dp = 1, .world_tp = 1, .threads = 1, .config_json = json};
        mt_err err;
        CHECK(!ckpt_save(dir, &meta, m, NULL, 1, 0, MPI_COMM_SELF, &err), "%s", err.msg);
        free(json);
        cJSON_Delete(j);
        model_free(m);
        o->destroy(o);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static model *load(const model_config *cfg, ops *o, comm_ctx *comm, const char *file) {
    model_layout L = comm ? comm_model_layout(comm) : layout_single();
    model *m = model_create_infer(cfg, o, 1, cfg->n_ctx, &L);
    mt_err err;
    CHECK(!ckpt_load(file, NULL, m, NULL, comm ? comm->comm[COMM_WORLD] : MPI_COMM_SELF, &err), "%s",
          err.msg);
    model_infer_ready(m);
    return m;
}

static void check_inference(const char *fam, const char *path, const char *dir) {
    model_config cfg = tu_model_config(path);
    write_checkpoint(&cfg, dir, tu_next());
    sync_rng();
    char file[4200];
    snprintf(file, sizeof file, "%s/latest", dir);
    ops *o = ops_cpu_create(1);
    comm_ctx comm;
    mt_err err;
    CHECK(!comm_init(&comm, MPI_COMM_WORLD, 2, &err), "%s", err.msg);
    model *whole = load(&cfg, o, NULL, file), *split = load(&cfg, o, &comm, file);
    const param_info *h = &split->table.p[split->table.head_w];
    int V = (int)whole->table.p[whole->table.head_w].valid_rows, n = (int)h->valid_rows;
    float *a = mt_malloc((size_t)V * sizeof *a), *b = mt_malloc((size_t)n * sizeof *b);
    enum { P = 9, STEPS = 25 };
    int32_t ids[P + STEPS];
    for (int i = 0; i < P + STEPS; i++)
        ids[i] = tu_int(cfg.vocab_size);
    double worst = 0;
    for (int pos = P - 1; pos < P + STEPS; pos++) {
        if (pos == P - 1) {
            model_prefill(whole, ids, P);
            model_prefill(split, ids, P);
        } else {
            model_decode(whole, &ids[pos]);
            model_decode(split, &ids[pos]);
        }
        model_get_last_logits(whole, a, V);
        model_get_last_logits(split, b, n);
        double e = tu_rel_err_ff(b, a + h->row_start, (size_t)n);
        worst = e > worst || isnan(e) ? e : worst;
    }
    worst = max_all(worst);
    char name[160];
    snprintf(name, sizeof name, "%s tp=2: prefill and %d decoding steps = one process (each rank's rows)",
             fam, STEPS);
    if (rank == 0)
        tu_check_rel(worst, 1e-5, name);
    free(a);
    free(b);
    model_free(whole);
    model_free(split);
    comm_free(&comm);
    o->destroy(o);
}

/* ---------------------------------------------------------------------------------------------- sampling */

static void check_sampling(void) {
    enum { V = 1001, SPLIT = 600, DRAWS = 2000 };
    float logits[V];
    for (int i = 0; i < V; i++)
        logits[i] = (float)(1.5 * tu_normal());
    logits[700] = logits[100]; /* a tie across the ranks */
    comm_ctx comm;
    mt_err err;
    CHECK(!comm_init(&comm, MPI_COMM_WORLD, 2, &err), "%s", err.msg);
    int first = rank ? SPLIT : 0, n = rank ? V - SPLIT : SPLIT;
    sampler *split = sampler_create(n, first, &comm), *whole = sampler_create(V, 0, NULL);
    static const struct {
        const char *name;
        sample_params p;
    } settings[] = {{"greedy", {0, 0, 1}},
                    {"temperature 1", {1, 0, 1}},
                    {"temperature 0.7, top_p 0.9", {0.7, 0, 0.9}},
                    {"temperature 1.3, top_k 20", {1.3, 20, 1}},
                    {"top_k 800 (more than a rank holds)", {1, 800, 1}},
                    {"top_k 50, top_p 0.5", {1, 50, 0.5}}};
    int32_t *mine = mt_malloc(DRAWS * sizeof *mine), *ref = mt_malloc(DRAWS * sizeof *ref);
    int32_t *other = mt_malloc(DRAWS * sizeof *other);
    for (size_t k = 0; k < sizeof settings / sizeof *settings; k++) {
        sampler_seed(split, 99 + k);
        sampler_seed(whole, 99 + k);
        for (int d = 0; d < DRAWS; d++) {
            mine[d] = sampler_next(split, &settings[k].p, logits + first);
            ref[d] = sampler_next(whole, &settings[k].p, logits);
        }
        MPI_Sendrecv(mine, DRAWS, MPI_INT, 1 - rank, 0, other, DRAWS, MPI_INT, 1 - rank, 0, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        int same = !memcmp(mine, ref, DRAWS * sizeof *mine),
            agree = !memcmp(mine, other, DRAWS * sizeof *mine);
        char name[160];
        snprintf(name, sizeof name, "sampler tp=2 [%s]: %d draws = one process, same on both ranks",
                 settings[k].name, DRAWS);
        check_all(same && agree, name, "differs (%g)", 0);
    }
    float bad[V];
    memcpy(bad, logits, sizeof bad);
    bad[SPLIT + 5] = NAN;
    sample_params plain = {1, 0, 1};
    int32_t got = sampler_next(split, &plain, bad + first);
    check_all(got == -1, "sampler tp=2: a NaN on rank 1 gives -1 on both ranks", "got %g", got);
    free(mine);
    free(ref);
    free(other);
    sampler_free(split);
    sampler_free(whole);
    comm_free(&comm);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 2, "run with mpirun -n 2 (got %d ranks)", size);
    unsigned long long seed = rank == 0 ? tu_seed("mpi_generate") : 0;
    MPI_Bcast(&seed, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    tu_srand(seed);
    char dir[] = "/tmp/mt_mpi_generate_XXXXXX";
    if (rank == 0)
        CHECK(mkdtemp(dir), "mkdtemp");
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    check_inference("gptj", "configs/models/tiny-gptj.json", dir);
    check_inference("neo", "configs/models/tiny-neo.json", dir);
    check_sampling();
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd))
            fprintf(stderr, "could not remove %s\n", dir);
    }
    int failures = tu_failures;
    MPI_Bcast(&failures, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return failures ? 1 : 0;
}
