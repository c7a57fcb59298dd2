/* bin/convert: Hugging Face model folders to and from meshtrain checkpoints; see usage() and README
 * "Fine-tuning a released model". */
#include <ctype.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "train/hf_convert.h"
#include "train/lora_merge.h"

/* On stdout when asked for (--help), on stderr after a usage error. */
static void usage(FILE *f) {
    fprintf(
        f,
        "usage: bin/convert hf-import --in HF_DIR --out CKPT.h5 [--config-out MODEL.json]\n"
        "       bin/convert hf-export --in CKPT.h5 --out HF_DIR [--dtype fp32|bf16|fp16] [--max-shard-size "
        "5GB]\n"
        "                             [--tokenizer-dir DIR | --no-tokenizer]\n"
        "       bin/convert merge-lora --in ADAPTER.h5 --out CKPT.h5 [--base BASE.h5]\n"
        "  hf-import: HF_DIR holds config.json (model_type gptj, gpt_neo or gpt2) and model.safetensors, or\n"
        "      model.safetensors.index.json and its shards (F32, F16 or BF16, widened exactly to fp32). "
        "Writes a\n"
        "      parameters-only checkpoint (step 0) for train.init_from, --eval-only or --resume, and with\n"
        "      --config-out the model config (named after HF_DIR) that a run with it must use.\n"
        "  hf-export: writes HF_DIR (absent or empty) with config.json, safetensors in HF's names and\n"
        "      orientations (sharded with model.safetensors.index.json above --max-shard-size, default 5GB;\n"
        "      sizes as 5GB, 500MB, 100KB, 2GiB), and vocab.json + merges.txt from --tokenizer-dir (default\n"
        "      $MESHTRAIN_CACHE/gpt2 or .cache/gpt2: encoder.json, vocab.bpe). bf16 and fp16 round to "
        "nearest\n"
        "      even (fp16 overflows to inf, with a warning).\n"
        "  merge-lora: a LoRA adapter checkpoint (bin/train with train.lora) merged into its base, the\n"
        "      checkpoint it names (or --base, which must hold the same parameters): a parameters-only\n"
        "      checkpoint of the plain model with W + alpha/rank B A, for hf-export, generate or init_from.\n"
        "  All stream tensor by tensor: peak memory is about the largest tensor in fp32.\n"
        "  Exit codes: 0 done, 1 internal error, 2 bad input.\n");
}

/* "5GB", "500MB", "100KB", "2GiB", "1000": decimal units as HF's max_shard_size, binary with "i". */
static int parse_size(const char *s, uint64_t *out) {
    static const struct {
        const char *unit;
        uint64_t scale;
    } UNITS[] = {{"", 1},
                 {"B", 1},
                 {"KB", 1000},
                 {"MB", 1000000},
                 {"GB", 1000000000},
                 {"KIB", 1ull << 10},
                 {"MIB", 1ull << 20},
                 {"GIB", 1ull << 30}};
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0))
        return -1;
    for (size_t i = 0; i < sizeof UNITS / sizeof *UNITS; i++)
        if (!strcasecmp(end, UNITS[i].unit) && v * (double)UNITS[i].scale < 1e18) {
            *out = (uint64_t)(v * (double)UNITS[i].scale);
            return *out ? 0 : -1;
        }
    return -1;
}

typedef struct {
    const char *in, *out, *config_out, *tokenizer_dir, *base;
    int no_tokenizer;
    hf_export_opts ex;
} options;

/* One option of a subcommand; 1 when it took the next argument. */
static int take(const char *cmd, const char *a, const char *v, options *o, char *msg, size_t cap) {
    int export = !strcmp(cmd, "hf-export"), merge = !strcmp(cmd, "merge-lora");
    if (export && !strcmp(a, "--no-tokenizer")) {
        o->no_tokenizer = 1;
        return 0;
    }
    if (!v) {
        snprintf(msg, cap, "%s: %s needs a value (see --help)", cmd, a);
        return -1;
    }
    if (!strcmp(a, "--in"))
        o->in = v;
    else if (!strcmp(a, "--out"))
        o->out = v;
    else if (merge && !strcmp(a, "--base"))
        o->base = v;
    else if (!strcmp(cmd, "hf-import") && !strcmp(a, "--config-out"))
        o->config_out = v;
    else if (export && !strcmp(a, "--tokenizer-dir"))
        o->tokenizer_dir = v;
    else if (export && !strcmp(a, "--max-shard-size")) {
        if (parse_size(v, &o->ex.max_shard_bytes)) {
            snprintf(msg, cap, "%s: --max-shard-size %s: expected a size such as 5GB, 500MB, 100KB or 2GiB",
                     cmd, v);
            return -1;
        }
    } else if (export && !strcmp(a, "--dtype")) {
        o->ex.dtype = !strcmp(v, "fp32")   ? ST_F32
                      : !strcmp(v, "bf16") ? ST_BF16
                      : !strcmp(v, "fp16") ? ST_F16
                                           : ST_N_DTYPES;
        if (o->ex.dtype == ST_N_DTYPES) {
            snprintf(msg, cap, "%s: --dtype %s: expected fp32, bf16 or fp16", cmd, v);
            return -1;
        }
    } else {
        snprintf(msg, cap, "%s: unexpected argument %s (see --help)", cmd, a);
        return -1;
    }
    return 1;
}

static int run(const char *cmd, int argc, char **argv, char *msg, size_t cap) {
    options o = {.ex = {.dtype = ST_F32, .max_shard_bytes = 5000000000ull}};
    for (int i = 0; i < argc; i++) {
        int k = take(cmd, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &o, msg, cap);
        if (k < 0)
            return 2;
        i += k;
    }
    if (!o.in || !o.out) {
        snprintf(msg, cap, "%s: --in and --out are required (see --help)", cmd);
        return 2;
    }
    mt_err err;
    int rc;
    if (!strcmp(cmd, "hf-import")) {
        rc = hf_import(o.in, o.out, o.config_out, &err);
    } else if (!strcmp(cmd, "merge-lora")) {
        rc = lora_merge(o.in, o.base, o.out, &err);
    } else {
        char dir[4096];
        const char *cache = getenv("MESHTRAIN_CACHE");
        snprintf(dir, sizeof dir, "%s/gpt2", cache && *cache ? cache : ".cache");
        o.ex.tokenizer_dir = o.no_tokenizer ? NULL : o.tokenizer_dir ? o.tokenizer_dir : dir;
        rc = hf_export(o.in, o.out, &o.ex, &err);
    }
    if (rc)
        snprintf(msg, cap, "%s", err.msg);
    return rc ? 2 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "hf-import") && strcmp(cmd, "hf-export") && strcmp(cmd, "merge-lora")) {
        fprintf(stderr, "convert: unknown subcommand %s (see bin/convert --help)\n", cmd);
        return 2;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    char msg[1200] = "";
    int code = run(cmd, argc - 2, argv + 2, msg, sizeof msg);
    for (char *c = msg; *c; c++) /* one line, whatever strings the input files held */
        if ((unsigned char)*c < 0x20)
            *c = '?';
    if (code)
        fprintf(stderr, "convert: %s\n", msg);
    int mpi_up, mpi_down; /* a checkpoint writer started MPI (MPI-IO), once every check passed */
    MPI_Initialized(&mpi_up);
    MPI_Finalized(&mpi_down);
    if (mpi_up && !mpi_down)
        MPI_Finalize();
    return code;
}
