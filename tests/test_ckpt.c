/* Checkpoints (DESIGN 7): bit-exact round trip, retention and `latest`, refusal of corrupted, truncated and
 * foreign checkpoints with messages naming the file and dataset, fallback to the previous checkpoint, and
 * crash safety: a save killed at random moments never leaves `latest` pointing at a broken file. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/h5.h"
#include "tests/test_model.h"
#include "tests/testutil.h"
#include "train/ckpt.h"
#include "train/ckpt_crc.h"

/* The models of this file: 2 threads, micro-batches of 1 x 8 tokens. */
static tu_trainee make_trainee(const model_config *cfg) { return tu_trainee_make(cfg, 2, 1, 8); }

/* Random parameters and moments (v > 0), so that a misplaced tensor shows. */
static void randomize(tu_trainee *t) {
    model *m = t->m;
    for (int i = 0; i < m->table.n; i++) {
        const param_info *p = &m->table.p[i];
        size_t n = tu_numel(p);
        float *x = mt_malloc(n * sizeof *x);
        tu_fill(x, n, 0.02);
        model_set_tensor(m, m->params, i, x);
        tu_fill(x, n, 1e-3);
        model_set_tensor(m, t->opt.m, i, x);
        for (size_t j = 0; j < n; j++)
            x[j] = x[j] * x[j];
        model_set_tensor(m, t->opt.v, i, x);
        free(x);
    }
}

/* The first tensor (of params, m, v) that differs bitwise, or NULL. */
static const char *first_difference(tu_trainee *a, tu_trainee *b) {
    ops_buf *bufs_a[3] = {a->m->params, a->opt.m, a->opt.v}, *bufs_b[3] = {b->m->params, b->opt.m, b->opt.v};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < a->m->table.n; i++) {
            const param_info *p = &a->m->table.p[i];
            float *x = tu_get_tensor(a->m, bufs_a[k], i), *y = tu_get_tensor(b->m, bufs_b[k], i);
            int same = !memcmp(x, y, tu_numel(p) * sizeof *x);
            free(x);
            free(y);
            if (!same)
                return p->name;
        }
    return NULL;
}

static ckpt_meta make_meta(const model_config *cfg, long step) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "model", model_config_to_json(cfg));
    cJSON_AddNumberToObject(root, "seed", 7);
    ckpt_meta meta = {.step = step,
                      .tokens_seen = step * 4096 + 17,
                      .loader_epoch = 3,
                      .loader_cursor = 123456789012L,
                      .rng_state = 0xfedcba9876543210ULL,
                      .world_dp = 1,
                      .world_tp = 1,
                      .threads = 2,
                      .config_json = cJSON_PrintUnformatted(root)};
    cJSON_Delete(root);
    return meta;
}

static char *slurp(const char *path, size_t *len) {
    mt_err err;
    return mt_read_file(path, len, &err);
}

static void copy_file(const char *from, const char *to) {
    size_t n;
    char *b = slurp(from, &n);
    CHECK(b, "read %s", from);
    FILE *f = fopen(to, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n && fclose(f) == 0, "write %s", to);
    free(b);
}

/* File offset of a dataset's data (contiguous). */
static long dataset_offset(const char *path, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "open %s", path);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    CHECK(d >= 0, "open %s", name);
    haddr_t off = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    return off == HADDR_UNDEF ? -1 : (long)off;
}

static void flip_byte(const char *path, long at) {
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0, "open %s", path);
    unsigned char c;
    CHECK(pread(fd, &c, 1, at) == 1, "pread");
    c ^= 0x5a;
    CHECK(pwrite(fd, &c, 1, at) == 1, "pwrite");
    close(fd);
}

/* Flips a byte at a random place inside the data of tensor `name` of `group`. */
static void corrupt_dataset(const char *path, const char *group, const param_info *p) {
    char dname[160];
    snprintf(dname, sizeof dname, "%s/%s", group, p->name);
    long off = dataset_offset(path, dname);
    CHECK(off > 0, "offset of %s", dname);
    flip_byte(path, off + (long)(tu_next() % (tu_numel(p) * sizeof(float))));
}

static void test_crc(void) {
    tu_check(crc32c("123456789", 9) == 0xe3069283u && crc32c_portable("123456789", 9) == 0xe3069283u,
             "crc32c.check_value", "crc32c(\"123456789\") = %08x / %08x, want e3069283",
             crc32c("123456789", 9), crc32c_portable("123456789", 9));
    unsigned char buf[1000];
    int same = 1;
    for (int r = 0; r < 50; r++) {
        size_t n = (size_t)tu_int(1000), off = (size_t)tu_int(8);
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (unsigned char)tu_next();
        if (off + n <= sizeof buf)
            same &= crc32c(buf + off, n) == crc32c_portable(buf + off, n);
    }
    tu_check(same, "crc32c.fast_equals_table", "SSE4.2 and table-driven CRC32C differ");
    /* Combining the CRCs of two pieces gives the CRC of their concatenation, for empty pieces and lengths
     * that are not a multiple of 4 (or 8, the fast path's word) too. */
    static unsigned char cat[3000];
    int joined = 1;
    for (int r = 0; r < 200; r++) {
        size_t na = r == 0 ? 0 : (size_t)tu_int(1500), nb = r == 1 ? 0 : (size_t)tu_int(1500);
        for (size_t i = 0; i < na + nb; i++)
            cat[i] = (unsigned char)tu_next();
        uint32_t want = crc32c(cat, na + nb), got = crc32c_combine(crc32c(cat, na), crc32c(cat + na, nb), nb);
        joined &= got == want;
    }
    tu_check(joined, "crc32c.combine", "crc32c_combine(crc(A), crc(B), len(B)) != crc(A || B)");
    tu_check(ckpt_crc_blocks(0) == 0 && ckpt_crc_blocks(1) == 1 && ckpt_crc_blocks(1 << 20) == 1 &&
                 ckpt_crc_blocks((1 << 20) + 1) == 2,
             "crc32c.block_count", "wrong block counts");
}

static void test_round_trip(const char *dir, const model_config *cfg) {
    mt_err err = {""};
    tu_trainee a = make_trainee(cfg), b = make_trainee(cfg);
    randomize(&a);
    ckpt_meta meta = make_meta(cfg, 5), got = {0};
    char d1[600], d2[600], path[700], path2[700];
    snprintf(d1, sizeof d1, "%s/rt1", dir);
    snprintf(d2, sizeof d2, "%s/rt2", dir);
    mkdir(d1, 0755);
    mkdir(d2, 0755);
    int rc = ckpt_save(d1, &meta, a.m, &a.opt, 3, 0, MPI_COMM_SELF, &err);
    tu_check(!rc, "round_trip.save", "%s", err.msg);
    snprintf(path, sizeof path, "%s/step_5.h5", d1);
    rc = ckpt_load(path, &got, b.m, &b.opt, MPI_COMM_SELF, &err);
    tu_check(!rc, "round_trip.load", "%s", err.msg);
    const char *diff = first_difference(&a, &b);
    tu_check(!rc && !diff, "round_trip.bit_identical", "tensor %s differs", diff ? diff : "?");
    tu_check(!rc && got.step == meta.step && got.tokens_seen == meta.tokens_seen &&
                 got.loader_epoch == meta.loader_epoch && got.loader_cursor == meta.loader_cursor &&
                 got.rng_state == meta.rng_state && got.world_dp == 1 && got.world_tp == 1 &&
                 got.threads == 2 && got.config_json && !strcmp(got.config_json, meta.config_json),
             "round_trip.meta", "attributes differ (step %ld, cursor %ld, rng %llx)", got.step,
             got.loader_cursor, (unsigned long long)got.rng_state);
    /* Saving the loaded copy gives the same tensors. (Not always the same bytes: HDF5 metadata blocks can
     * carry unset bytes.) */
    rc = ckpt_save(d2, &meta, b.m, &b.opt, 3, 0, MPI_COMM_SELF, &err);
    snprintf(path2, sizeof path2, "%s/step_5.h5", d2);
    tu_trainee r = make_trainee(cfg);
    rc = rc ? rc : ckpt_load(path2, NULL, r.m, &r.opt, MPI_COMM_SELF, &err);
    diff = rc ? NULL : first_difference(&a, &r);
    tu_check(!rc && !diff, "round_trip.resave_same_tensors", "%s", rc ? err.msg : diff);
    tu_trainee_drop(&r);
    /* Parameters only. */
    tu_trainee c = make_trainee(cfg);
    rc = ckpt_load(path, NULL, c.m, NULL, MPI_COMM_SELF, &err);
    float *x = tu_get_tensor(a.m, a.m->params, 0), *y = tu_get_tensor(c.m, c.m->params, 0);
    tu_check(!rc && !memcmp(x, y, tu_numel(&c.m->table.p[0]) * sizeof *x), "round_trip.params_only", "%s",
             rc ? err.msg : "parameters differ");
    free(x);
    free(y);
    rc = ckpt_verify(path, MPI_COMM_SELF, &err);
    tu_check(!rc, "round_trip.verify", "%s", err.msg);
    ckpt_meta_free(&got);
    ckpt_meta_free(&meta);
    tu_trainee_drop(&a);
    tu_trainee_drop(&b);
    tu_trainee_drop(&c);
}

/* The step_*.h5 files of dir as "3 6 9 10". */
static void list_steps(const char *dir, char *out, size_t cap) {
    int have[64] = {0};
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        int k;
        char rest[16];
        if (sscanf(e->d_name, "step_%d%15s", &k, rest) == 2 && !strcmp(rest, ".h5") && k >= 0 && k < 64)
            have[k] = 1;
    }
    if (d)
        closedir(d);
    out[0] = 0;
    for (int k = 0; k < 64; k++)
        if (have[k])
            snprintf(out + strlen(out), cap - strlen(out), "%s%d", out[0] ? " " : "", k);
}

/* A parameter that went NaN is never saved (the previous checkpoint stays latest), nor loaded. */
static void test_non_finite(const char *dir, const model_config *cfg) {
    mt_err err = {""};
    tu_trainee a = make_trainee(cfg);
    randomize(&a);
    ckpt_meta meta = make_meta(cfg, 7);
    char d[600], path[700];
    snprintf(d, sizeof d, "%s/nan", dir);
    mkdir(d, 0755);
    int i = param_find(&a.m->table, "h.1.mlp.fc_out.weight");
    const param_info *p = &a.m->table.p[i];
    float *x = mt_malloc(p->numel * sizeof *x);
    model_get_tensor(a.m, a.m->params, i, x);
    x[p->numel / 2] = NAN;
    model_set_tensor(a.m, a.m->params, i, x);
    int rc = ckpt_save(d, &meta, a.m, &a.opt, 3, 0, MPI_COMM_SELF, &err);
    snprintf(path, sizeof path, "%s/step_7.h5", d);
    tu_check(rc && strstr(err.msg, "h.1.mlp.fc_out.weight holds NaN") && access(path, F_OK) != 0,
             "non_finite.not_saved", "rc %d, message '%s'", rc, err.msg);
    /* Written behind the guard's back, with a checksum that matches, it is refused on load. */
    x[p->numel / 2] = 1.0f;
    model_set_tensor(a.m, a.m->params, i, x);
    rc = ckpt_save(d, &meta, a.m, &a.opt, 3, 0, MPI_COMM_SELF, &err);
    x[p->numel / 2] = INFINITY;
    CHECK(p->numel <= CKPT_CRC_BLOCK_FLOATS, "one checksum block");
    uint32_t crc = crc32c(x, p->numel * sizeof *x);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "params/h.1.mlp.fc_out.weight", H5P_DEFAULT);
    hid_t at = H5Aopen(ds, "crc32c", H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Awrite(at, H5T_NATIVE_UINT32, &crc);
    H5Aclose(at);
    H5Dclose(ds);
    H5Fclose(f);
    rc = rc ? -2 : ckpt_load(path, NULL, a.m, NULL, MPI_COMM_SELF, &err);
    tu_check(rc == -1 && strstr(err.msg, "params/h.1.mlp.fc_out.weight holds NaN or infinite values"),
             "non_finite.not_loaded", "rc %d, message '%s'", rc, err.msg);
    free(x);
    ckpt_meta_free(&meta);
    tu_trainee_drop(&a);
}

static void test_retention_and_fallback(const char *dir, const model_config *cfg) {
    mt_err err = {""};
    tu_trainee a = make_trainee(cfg);
    randomize(&a);
    char d[600], got[64], target[64] = "", path[4096], note[2048], want[700];
    snprintf(d, sizeof d, "%s/keep", dir);
    mkdir(d, 0755);
    int rc = 0;
    for (long s = 1; s <= 10 && !rc; s++) {
        ckpt_meta meta = make_meta(cfg, s);
        rc = ckpt_save(d, &meta, a.m, &a.opt, 2, 3, MPI_COMM_SELF, &err);
        ckpt_meta_free(&meta);
    }
    list_steps(d, got, sizeof got);
    tu_check(!rc && !strcmp(got, "3 6 9 10"), "retention.keep_last2_every3", "files: %s (want 3 6 9 10) %s",
             got, rc ? err.msg : "");
    char link[700];
    snprintf(link, sizeof link, "%s/latest", d);
    ssize_t k = readlink(link, target, sizeof target - 1);
    target[k > 0 ? k : 0] = 0;
    tu_check(!strcmp(target, "step_10.h5"), "retention.latest_is_newest", "latest -> '%s'", target);
    rc = ckpt_latest_valid(d, path, sizeof path, note, sizeof note, MPI_COMM_SELF, &err);
    snprintf(want, sizeof want, "%s/step_10.h5", d);
    tu_check(!rc && !strcmp(path, want) && !note[0], "latest_valid.uses_latest", "got %s note '%s' %s", path,
             note, rc ? err.msg : "");

    /* A leftover temporary file (a crash before the rename) is ignored. */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s/step_11.h5.tmp", d);
    FILE *f = fopen(tmp, "wb");
    CHECK(f, "create %s", tmp);
    fputs("partial", f);
    fclose(f);
    rc = ckpt_latest_valid(d, path, sizeof path, note, sizeof note, MPI_COMM_SELF, &err);
    tu_check(!rc && !strcmp(path, want) && !note[0], "latest_valid.ignores_tmp", "got %s note '%s'", path,
             note);
    unlink(link);
    rc = ckpt_latest_valid(d, path, sizeof path, note, sizeof note, MPI_COMM_SELF, &err);
    tu_check(!rc && !strcmp(path, want) && note[0], "latest_valid.missing_link_falls_back",
             "got %s note '%s' %s", path, note, rc ? err.msg : "");

    /* The newest deleted: fall back to the previous with a note. */
    ckpt_meta meta = make_meta(cfg, 12);
    rc = ckpt_save(d, &meta, a.m, &a.opt, 2, 3, MPI_COMM_SELF, &err);
    ckpt_meta_free(&meta);
    snprintf(tmp, sizeof tmp, "%s/step_12.h5", d);
    unlink(tmp);
    rc = rc ? rc : ckpt_latest_valid(d, path, sizeof path, note, sizeof note, MPI_COMM_SELF, &err);
    tu_check(!rc && !strcmp(path, want) && strstr(note, "step_12.h5") && strstr(note, "step_10.h5"),
             "latest_valid.deleted_newest_falls_back", "got %s note '%s' %s", path, note, rc ? err.msg : "");
    printf("#   note: %s\n", note);

    /* A flipped byte in the newest: fall back too, and loading it is refused naming the dataset. */
    meta = make_meta(cfg, 13);
    rc = ckpt_save(d, &meta, a.m, &a.opt, 3, 3, MPI_COMM_SELF, &err);
    ckpt_meta_free(&meta);
    snprintf(tmp, sizeof tmp, "%s/step_13.h5", d);
    const param_info *victim = &a.m->table.p[tu_int(a.m->table.n)];
    const char *groups[3] = {"params", "optim/m", "optim/v"};
    const char *group = groups[tu_int(3)];
    corrupt_dataset(tmp, group, victim);
    rc = rc ? rc : ckpt_latest_valid(d, path, sizeof path, note, sizeof note, MPI_COMM_SELF, &err);
    tu_check(!rc && !strcmp(path, want) && strstr(note, "step_13.h5") && strstr(note, victim->name),
             "latest_valid.corrupt_newest_falls_back", "got %s note '%s' %s", path, note, rc ? err.msg : "");
    tu_trainee b = make_trainee(cfg);
    rc = ckpt_load(tmp, NULL, b.m, &b.opt, MPI_COMM_SELF, &err);
    char dname[200];
    snprintf(dname, sizeof dname, "%s/%s", group, victim->name);
    tu_check(rc && strstr(err.msg, dname) && strstr(err.msg, tmp) && !strchr(err.msg, '\n'),
             "corrupt.flipped_byte_refused", "rc %d, message '%s' (want %s)", rc, err.msg, dname);
    printf("#   message: %s\n", err.msg);

    /* Truncated: refused naming the file. */
    snprintf(tmp, sizeof tmp, "%s/step_10.h5", d);
    char cut[700];
    snprintf(cut, sizeof cut, "%s/cut.h5", dir);
    copy_file(tmp, cut);
    struct stat st;
    stat(cut, &st);
    CHECK(truncate(cut, st.st_size / 2) == 0, "truncate");
    rc = ckpt_load(cut, NULL, b.m, &b.opt, MPI_COMM_SELF, &err);
    tu_check(rc && strstr(err.msg, cut) && !strchr(err.msg, '\n'), "corrupt.truncated_refused",
             "rc %d, message '%s'", rc, err.msg);
    printf("#   message: %s\n", err.msg);
    rc = ckpt_load("/nonexistent/step_1.h5", NULL, b.m, &b.opt, MPI_COMM_SELF, &err);
    tu_check(rc && strstr(err.msg, "/nonexistent/step_1.h5"), "corrupt.missing_file_refused", "message '%s'",
             err.msg);

    /* Nothing valid at all. */
    char empty[700];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    mkdir(empty, 0755);
    rc = ckpt_latest_valid(empty, path, sizeof path, note, sizeof note, MPI_COMM_SELF, &err);
    tu_check(rc && strstr(err.msg, empty), "latest_valid.none_is_error", "rc %d message '%s'", rc, err.msg);

    /* A different model: refused naming the differing fields (nested ones by their path) with both values. */
    model_config neo = tu_model_config("configs/models/tiny-neo.json");
    tu_trainee n = make_trainee(&neo);
    rc = ckpt_load(tmp, NULL, n.m, &n.opt, MPI_COMM_SELF, &err);
    tu_check(rc && strstr(err.msg, "different model") &&
                 strstr(err.msg, "n_layer 2 (checkpoint) vs 3 (model)") &&
                 strstr(err.msg, "bias.lm_head true (checkpoint) vs false (model)") && strstr(err.msg, tmp),
             "wrong_model.refused", "rc %d message '%s'", rc, err.msg);
    printf("#   message: %s\n", err.msg);
    tu_trainee_drop(&n);
    tu_trainee_drop(&a);
    tu_trainee_drop(&b);
}

/* Child of the crash test: saves forever (until killed). */
static void save_forever(const char *dir, tu_trainee *t, const model_config *cfg, long first_step) {
    for (long s = first_step;; s++) {
        ckpt_meta meta = make_meta(cfg, s);
        mt_err err;
        if (ckpt_save(dir, &meta, t->m, &t->opt, 2, 0, MPI_COMM_SELF, &err)) {
            fprintf(stderr, "child: %s\n", err.msg);
            _exit(1);
        }
        ckpt_meta_free(&meta);
    }
}

static void test_crash(const char *dir) {
    model_config cfg = tu_model_config("configs/models/tiny-gptj.json");
    cfg.n_layer = 4;
    cfg.d_model = 256;
    cfg.n_head = 8;
    cfg.d_ff = 1024;
    tu_trainee t = make_trainee(&cfg), r = make_trainee(&cfg);
    randomize(&t);
    char d[600], path[4096], note[2048];
    snprintf(d, sizeof d, "%s/crash", dir);
    mkdir(d, 0755);
    mt_err err = {""};
    ckpt_meta meta = make_meta(&cfg, 0);
    double t0 = mt_now();
    int rc = ckpt_save(d, &meta, t.m, &t.opt, 2, 0, MPI_COMM_SELF, &err);
    double save_s = mt_now() - t0;
    ckpt_meta_free(&meta);
    printf("#   crash test: one save of %.1f MB takes %.3f s\n",
           3.0 * 4.0 * (double)param_count(&t.m->table) / 1e6, save_s);
    CHECK(!rc, "%s", err.msg);
    int kills = 20, bad = 0, with_latest = 0;
    char why[8192] = "";
    for (int i = 0; i < kills; i++) {
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0)
            save_forever(d, &t, &cfg, 1000L * (i + 1));
        double delay = tu_uniform() * 2.5 * save_s;
        struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status)) {
            bad++;
            snprintf(why, sizeof why, "child exited with %d before the kill", WEXITSTATUS(status));
            continue;
        }
        char link[700];
        snprintf(link, sizeof link, "%s/latest", d);
        struct stat st;
        if (lstat(link, &st))
            continue;
        with_latest++;
        rc = ckpt_latest_valid(d, path, sizeof path, note, sizeof note, MPI_COMM_SELF, &err);
        if (rc || note[0]) {
            bad++;
            snprintf(why, sizeof why, "after kill %d: %s", i, rc ? err.msg : note);
            continue;
        }
        if (ckpt_load(path, NULL, r.m, &r.opt, MPI_COMM_SELF, &err) || first_difference(&t, &r)) {
            bad++;
            snprintf(why, sizeof why, "after kill %d: %s does not load back: %s", i, path, err.msg);
        }
    }
    tu_check(!bad && with_latest == kills, "crash.latest_always_valid",
             "%d of %d kills: %s (latest present %d)", bad, kills, why, with_latest);
    tu_trainee_drop(&t);
    tu_trainee_drop(&r);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    h5_quiet();
    tu_srand(tu_seed("test_ckpt"));
    char dir[] = "/tmp/mt_ckpt_XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    model_config cfg = tu_model_config("configs/models/tiny-gptj.json");
    test_crc();
    test_round_trip(dir, &cfg);
    test_non_finite(dir, &cfg);
    test_retention_and_fallback(dir, &cfg);
    test_crash(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
    MPI_Finalize();
    return tu_exit();
}
