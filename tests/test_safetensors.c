/* safetensors (SPEC 5.4, train/safetensors.c): the header parser on valid and hostile headers and on
 * random mutations of them (seeded; MT_TEST_SEED reproduces a run, MT_FUZZ_ITERS sets the count), the
 * header writer read back by the parser, and the 16-bit float conversions: every 16-bit value round
 * trips, and float32 -> bf16 / fp16 equals a nearest-even rounding computed independently in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"
#include "train/safetensors.h"

static const char *PATH = "case.safetensors";

/* Parses json (NUL-terminated) against data_len; 0 when accepted. Any message must name the file. */
static int parse(const char *json, size_t len, uint64_t data_len, mt_err *err, st_header *h) {
    err->msg[0] = 0;
    int rc = st_parse_header(json, len, data_len, PATH, h, err);
    CHECK(rc == 0 || (strstr(err->msg, PATH) == err->msg && !strchr(err->msg, '\n')), "bad message: %s",
          err->msg);
    return rc;
}

static void valid_header(void) {
    const char *j = "{\"__metadata__\":{\"format\":\"pt\"},\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_"
                    "offsets\":[26,26]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[24,26]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}   ";
    st_header h;
    mt_err err;
    int rc = parse(j, strlen(j), 26, &err, &h);
    tu_check(!rc && h.n == 3 && !strcmp(h.t[0].name, "a") && h.t[0].ndim == 2 && h.t[0].shape[1] == 3 &&
                 h.t[1].dtype == ST_BF16 && h.t[1].ndim == 0 && st_numel(&h.t[1]) == 1 &&
                 st_numel(&h.t[2]) == 0 && st_find(&h, "b") == &h.t[1] && !st_find(&h, "c"),
             "parse.valid", "rc %d: %s", rc, err.msg);
    if (!rc)
        st_header_free(&h);
}

static void hostile_headers(void) {
    static const struct {
        const char *name, *json;
        uint64_t data_len;
        const char *want;
    } CASES[] = {
        {"empty", "", 0, "not valid JSON"},
        {"not_object", "[1,2]", 0, "not a JSON object"},
        {"trailing", "{} x", 0, "bytes after"},
        {"utf8_invalid", "{\"\xff\":1}", 0, "not valid UTF-8"},
        {"utf8_overlong", "{\"\xc0\xaf\":1}", 0, "not valid UTF-8"},
        {"utf8_surrogate", "{\"\xed\xa0\x80\":1}", 0, "not valid UTF-8"},
        {"utf8_truncated", "{\"a\":\"\xe2\x82", 0, "not valid UTF-8"},
        {"control_char", "{\"a\x01\":1}", 0, "control character"},
        {"escaped_control_char", "{\"a\\nb\":1}", 0, "name contains a control character"},
        {"entry_not_object", "{\"a\":1}", 0, "not an object"},
        {"metadata_value", "{\"__metadata__\":{\"k\":1}}", 0, "not a string"},
        {"unknown_dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype"},
        {"negative_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
         "shape entry"},
        {"fractional_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
         "shape entry"},
        {"too_many_dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
         1, "at most 8"},
        {"numel_overflow",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,1]}}", 1,
         "shape entry"},
        {"bytes_overflow",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,536870912],\"data_offsets\":[0,8]}}", 8,
         "is not the"},
        {"offsets_not_pair", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "pair"},
        {"offsets_reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "pair"},
        {"offsets_huge", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1e300,1e300]}}", 8,
         "pair"},
        {"offsets_outside", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8,
         "outside the 8-byte data buffer"},
        {"bytes_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
         "is not the 4 bytes"},
        {"overlap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "overlap"},
        {"gap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
         16, "unused"},
        {"short_cover", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16,
         "cover 8 bytes"},
        {"duplicate",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "twice"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        st_header h;
        mt_err err;
        int rc = parse(CASES[i].json, strlen(CASES[i].json), CASES[i].data_len, &err, &h);
        char name[80];
        snprintf(name, sizeof name, "parse.refuses_%s", CASES[i].name);
        tu_check(rc && strstr(err.msg, CASES[i].want), name, "rc %d, message '%s' (want '%s')", rc, err.msg,
                 CASES[i].want);
        if (!rc)
            st_header_free(&h);
    }
    const char nul[] = "{\"a\0\":1}"; /* a NUL byte inside the header */
    st_header h;
    mt_err err;
    tu_check(parse(nul, sizeof nul - 1, 0, &err, &h) && strstr(err.msg, "control character"),
             "parse.refuses_nul", "message '%s'", err.msg);
}

/* An accepted header must describe tensors that tile the data exactly. */
static int consistent(const st_header *h, uint64_t data_len) {
    uint64_t sum = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (st_numel(&h->t[i]) * st_dtype_size(h->t[i].dtype) != h->t[i].end - h->t[i].begin ||
            h->t[i].end > data_len)
            return 0;
        sum += h->t[i].end - h->t[i].begin;
    }
    return sum == data_len;
}

static void fuzz(long iters) {
    st_tensor t[3] = {{.name = "h.0.attn.c_attn.weight", .dtype = ST_F16, .ndim = 2, .shape = {4, 12}},
                      {.name = "wte.weight", .dtype = ST_BF16, .ndim = 2, .shape = {7, 4}},
                      {.name = "h.0.attn.bias", .dtype = ST_BOOL, .ndim = 4, .shape = {1, 1, 3, 3}}};
    size_t len;
    char *base = st_header_build(t, 3, &len);
    uint64_t data_len = t[2].end;
    static const char ALPHABET[] = "{}[]\":,0123456789-.eE \\u\xff\xc3\x01";
    long accepted = 0, bad = 0;
    char *buf = mt_malloc(2 * len + 64);
    for (long it = 0; it < iters; it++) {
        size_t n = len;
        memcpy(buf, base, len);
        for (int m = 1 + tu_int(4); m > 0; m--) {
            size_t at = (size_t)tu_int((int)n + 1);
            int op = tu_int(4);
            if (op == 0 && at < n) /* overwrite */
                buf[at] = ALPHABET[tu_int(sizeof ALPHABET - 1)];
            else if (op == 1 && at < n) /* delete */
                memmove(buf + at, buf + at + 1, n-- - at - 1);
            else if (op == 2 && n < 2 * len) { /* insert */
                memmove(buf + at + 1, buf + at, n++ - at);
                buf[at] = ALPHABET[tu_int(sizeof ALPHABET - 1)];
            } else /* truncate */
                n = at;
        }
        uint64_t dl = tu_int(2) ? data_len : (uint64_t)tu_int(400);
        char *exact = mt_malloc(n ? n : 1); /* exactly n bytes, so ASan sees any read past them */
        memcpy(exact, buf, n);
        st_header h;
        mt_err err;
        if (!parse(exact, n, dl, &err, &h)) {
            accepted++;
            bad += !consistent(&h, dl);
            st_header_free(&h);
        }
        free(exact);
    }
    free(buf);
    tu_check(!bad, "parse.fuzz_mutations",
             "%ld of %ld accepted headers describe tensors that do not tile the data", bad, accepted);
    printf("#   %ld mutated headers, %ld accepted (all consistent)\n", iters, accepted);
    st_header h;
    mt_err err;
    int rc = parse(base, len, data_len, &err, &h);
    tu_check(!rc && len % 8 == 0 && h.n == 3 && !strcmp(h.t[1].name, "h.0.attn.c_attn.weight") &&
                 h.t[1].dtype == ST_F16 && h.t[1].end - h.t[1].begin == 96 && h.t[0].ndim == 4 &&
                 consistent(&h, data_len),
             "build.reads_back", "rc %d (%s), header length %zu", rc, err.msg, len);
    if (!rc)
        st_header_free(&h);
    free(base);
}

/* Nearest-even rounding of finite x to the 16-bit format whose non-negative values, in bit order, are
 * value(0..top) (top + 1 standing for infinity at `beyond`), by comparing distances in double. */
static uint16_t nearest_even(float x, double (*value)(unsigned), unsigned top, double beyond) {
    double a = fabs((double)x);
    unsigned lo = 0, hi = top + 1; /* largest h with value(h) <= a, by bisection */
    while (lo + 1 < hi) {
        unsigned mid = (lo + hi) / 2;
        if (value(mid) <= a)
            lo = mid;
        else
            hi = mid;
    }
    unsigned h = lo;
    if (a >= beyond)
        h = top + 1;
    else if (a > value(lo)) {
        double up = lo == top ? beyond : value(lo + 1), d_lo = a - value(lo), d_up = up - a;
        h = d_up < d_lo || (d_up == d_lo && (lo & 1)) ? lo + 1 : lo;
    }
    return (uint16_t)(h | (signbit(x) ? 0x8000u : 0));
}

static double bf16_value(unsigned h) { return (double)st_bf16_to_f32((uint16_t)h); }
static double f16_value(unsigned h) { return (double)st_f16_to_f32((uint16_t)h); }

static void conversions(void) {
    int bad_bf = 0, bad_f16 = 0;
    for (unsigned h = 0; h < 65536; h++) { /* every 16-bit value widens exactly and narrows back */
        float b = st_bf16_to_f32((uint16_t)h), f = st_f16_to_f32((uint16_t)h);
        bad_bf += isnan(b) ? !isnan(st_bf16_to_f32(st_f32_to_bf16(b))) : st_f32_to_bf16(b) != h;
        bad_f16 += isnan(f) ? !isnan(st_f16_to_f32(st_f32_to_f16(f))) : st_f32_to_f16(f) != h;
    }
    tu_check(!bad_bf && !bad_f16, "convert.every_16bit_value_round_trips", "%d bf16, %d fp16 values differ",
             bad_bf, bad_f16);
    /* Random float32 bit patterns, plus ties and range ends. */
    static const float SPECIAL[] = {1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 1.0f + 0x1p-8f, 1.0f + 0x3p-8f,
                                    65504.0f,        65519.0f,        65520.0f,       65536.0f,
                                    0x1p-24f,        0x1p-25f,        0x3p-26f,       -0.0f,
                                    0x1p-149f,       3.3961776e38f,   3.4e38f};
    long n = 2000000, wrong_bf = 0, wrong_f16 = 0;
    for (long i = 0; i < n; i++) {
        uint32_t u = (uint32_t)tu_next();
        float x;
        memcpy(&x, &u, 4);
        if (i < (long)(sizeof SPECIAL / sizeof *SPECIAL))
            x = SPECIAL[i];
        if (!isfinite(x))
            continue;
        wrong_bf += st_f32_to_bf16(x) != nearest_even(x, bf16_value, 0x7f7f, 0x1p128);
        wrong_f16 += st_f32_to_f16(x) != nearest_even(x, f16_value, 0x7bff, 65536.0);
    }
    tu_check(!wrong_bf && !wrong_f16, "convert.f32_rounds_to_nearest_even",
             "%ld bf16 and %ld fp16 results differ from the reference rounding", wrong_bf, wrong_f16);
    uint16_t nan_bf = st_f32_to_bf16(NAN);
    tu_check(isnan(st_bf16_to_f32(nan_bf)) && isnan(st_f16_to_f32(st_f32_to_f16(NAN))),
             "convert.nan_stays_nan", "bf16 %04x", nan_bf);
}

int main(void) {
    tu_srand(tu_seed("test_safetensors"));
    const char *env = getenv("MT_FUZZ_ITERS");
    valid_header();
    hostile_headers();
    fuzz(env ? atol(env) : 20000);
    conversions();
    return tu_exit();
}
