#!/usr/bin/env bash
# bin/generate end to end. A tiny model of each family is trained on a synthetic corpus (bin/train), then:
#  - greedy completions (32 tokens; prompts shorter and longer than the local window, and one that runs into
#    the end of the context) equal the independent PyTorch reference's greedy decoding (tests/ref,
#    full recomputation per token) on the same checkpoint;
#  - mpirun -n 2 (tensor parallel), the emulated CUDA backend (bf16) and both at once (NCCL) give the same
#    tokens as one CPU process; sampled completions too (tp=2; the CPU and bf16 differ in the probabilities);
#  - sampling: the same seed gives the same text, top-k 1 gives the greedy text;
#  - with a model over GPT-2's whole vocabulary and text prompts: the streamed stdout equals the batch
#    file's completion, which equals Python's decoding (errors='replace') of the ids' bytes from encoder.json;
#    --stop cuts exactly before the first occurrence; --alpaca equals the template written out; stdin lines
#    are completed one by one;
#  - bad input: one line on stderr, exit 2.
# tests/mpi_generate (mpirun -n 2) compares logits under tp=2 and the sampler's collectives.
set -u
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_WAIT_POLICY=passive
PY=/usr/bin/python3
VOCAB=${MESHTRAIN_CACHE:-$PWD/.cache}/gpt2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

OMP_NUM_THREADS=1 mpirun -n 2 build/tests/mpi_generate 2>&1 || echo "FAIL mpi_generate: exited with status $?"

bin/prepare synthetic --out "$tmp/train.h5" --tokens 100000 --vocab 240 --seed 5 2>/dev/null
train() { # NAME MODEL STEPS DATA [--set ...]
    local name=$1 model=$2 steps=$3 data=$4
    shift 4
    cat >"$tmp/$name.json" <<JSON
{"model": "$PWD/configs/models/$model.json", "run_dir": "$tmp/$name", "threads": 2,
 "data": {"train": "$data", "seq_len": 32},
 "train": {"micro_batch": 8, "steps": $steps, "lr": 1e-2, "warmup_steps": 10, "log_every": 1000}}
JSON
    bin/train "$tmp/$name.json" "$@" >"$tmp/$name.train.out" 2>&1 ||
        { echo "FAIL train $name: $(tail -2 "$tmp/$name.train.out")"; return 1; }
}

# Prompts of 5 and 12 tokens (the local window is 6) and of 50 (+ 15 new tokens reach n_ctx = 64).
$PY - "$tmp" <<'PY'
import json, random, sys
r = random.Random(7)
prompts = [[r.randrange(240) for _ in range(n)] for n in (5, 12, 50)]
with open(f"{sys.argv[1]}/prompts.jsonl", "w") as f:
    for p in prompts:
        f.write(json.dumps({"prompt_ids": p}) + "\n")
json.dump({"prompts": prompts, "max_new": 32, "limit": 240}, open(f"{sys.argv[1]}/prompts.json", "w"))
PY

# same_ids NAME A.jsonl B.jsonl: equal completion ids (and finish reasons), line by line.
same_ids() {
    $PY - "$@" <<'PY'
import json, sys
name, a, b = sys.argv[1:]
try:
    ra = [json.loads(l) for l in open(a)]
    rb = [json.loads(l) for l in open(b)]
except (OSError, ValueError) as e:
    print(f"FAIL {name}: {e}"); sys.exit()
key = lambda r: (r["completion_ids"], r["finish_reason"], r["prompt_tokens"], r["new_tokens"])
ok = len(ra) == len(rb) > 0 and all(key(x) == key(y) for x, y in zip(ra, rb))
print(f"ok {name}" if ok else f"FAIL {name}: {[key(x) for x in ra]} vs {[key(y) for y in rb]}")
PY
}

gen() { # OUT.jsonl bin/generate-like command and arguments (after the checkpoint)...
    local out=$1
    shift
    "$@" --batch-file "$tmp/prompts.jsonl" --out "$out" >"$out.stdout" 2>"$out.stderr" ||
        echo "FAIL $(basename "$out"): exit $?: $(tail -3 "$out.stderr")"
}

greedy=(--temperature 0 --max-new-tokens 32)
for fam in gptj neo gpt2; do
    train "$fam" "tiny-$fam" 300 "$tmp/train.h5" || continue
    g=$tmp/$fam
    gen "$g.cpu.jsonl" bin/generate "$g" "${greedy[@]}"
    if $PY tests/ref/model_ref.py greedy "$g/ckpt/latest" "$tmp/prompts.json" "$g.ref.json"; then
        $PY - "$fam" "$g.cpu.jsonl" "$g.ref.json" <<'PY'
import json, sys
fam, cpu, ref = sys.argv[1:]
got = [json.loads(l)["completion_ids"] for l in open(cpu)]
want = json.load(open(ref))
ok = got == want["completions"]
print(f"ok {fam}.greedy = PyTorch reference (3 prompts, up to 32 tokens)" if ok else
      f"FAIL {fam}.greedy = PyTorch reference: {got} vs {want['completions']}")
print(f"#   {fam}: {[len(c) for c in got]} new tokens; smallest top-1/top-2 logit gap on the way "
      f"{want['min_margin']:.3f}")
PY
    else
        echo "FAIL $fam.greedy: the PyTorch reference failed"
    fi
    grep -q '"finish_reason": "context"' "$g.cpu.jsonl" && echo "ok $fam.the 50-token prompt ends at n_ctx" ||
        echo "FAIL $fam.the 50-token prompt ends at n_ctx: $(tail -1 "$g.cpu.jsonl" | cut -c1-200)"
    gen "$g.tp2.jsonl" env OMP_NUM_THREADS=1 mpirun -n 2 bin/generate "$g" "${greedy[@]}"
    same_ids "$fam.greedy tp=2 = one process" "$g.tp2.jsonl" "$g.cpu.jsonl"
    gen "$g.cuda.jsonl" build/emu/bin/generate "$g" --backend cuda "${greedy[@]}"
    same_ids "$fam.greedy emulated cuda (bf16) = cpu" "$g.cuda.jsonl" "$g.cpu.jsonl"
done

g=$tmp/gptj
gen "$g.cuda-tp2.jsonl" env OMP_NUM_THREADS=1 SIMT_DEVICES=2 mpirun -n 2 build/emu/bin/generate "$g" --backend cuda \
    "${greedy[@]}"
same_ids "gptj.greedy emulated cuda tp=2 (NCCL) = cpu" "$g.cuda-tp2.jsonl" "$g.cpu.jsonl"
sample=(--temperature 0.9 --top-p 0.95 --max-new-tokens 32 --seed 11)
gen "$g.s1.jsonl" bin/generate "$g" "${sample[@]}"
gen "$g.s2.jsonl" bin/generate "$g" "${sample[@]}"
cmp -s "$g.s1.jsonl" "$g.s2.jsonl" && ! cmp -s "$g.s1.jsonl" "$g.cpu.jsonl" &&
    echo "ok sampling: the same seed gives the same completions" ||
    echo "FAIL sampling: the same seed gives the same completions"
gen "$g.s3.jsonl" bin/generate "$g" "${sample[@]:0:6}" --seed 12
cmp -s "$g.s1.jsonl" "$g.s3.jsonl" && echo "FAIL sampling: another seed gives the same completions" ||
    echo "ok sampling: another seed gives other completions"
gen "$g.s-tp2.jsonl" env OMP_NUM_THREADS=1 mpirun -n 2 bin/generate "$g" "${sample[@]}"
same_ids "sampling tp=2 = one process (same seed)" "$g.s-tp2.jsonl" "$g.s1.jsonl"
gen "$g.k1.jsonl" bin/generate "$g" --temperature 1.5 --top-k 1 --max-new-tokens 32
same_ids "sampling: top-k 1 = greedy" "$g.k1.jsonl" "$g.cpu.jsonl"

# ---- text: a model over GPT-2's whole vocabulary (a few steps on a synthetic corpus of 50257 ids)
bin/prepare synthetic --out "$tmp/text.h5" --tokens 20000 --vocab 50257 --eot 50256 --seed 2 2>/dev/null
train text tiny-gpt2 3 "$tmp/text.h5" --set model.vocab_size=50257 --set model.loss_vocab=50257 \
    --set model.eot_token=50256
T=$tmp/text
G=(bin/generate "$T" --temperature 0 --max-new-tokens 40)
"${G[@]}" --prompt "The quick brown fox" >"$tmp/fox.out" 2>"$tmp/fox.err" || echo "FAIL text: exit $?: $(cat "$tmp/fox.err")"
printf '{"prompt": "The quick brown fox"}\n' >"$tmp/fox.jsonl"
"${G[@]}" --batch-file "$tmp/fox.jsonl" --out "$tmp/fox.res.jsonl" 2>/dev/null
$PY - "$tmp" "$VOCAB/encoder.json" <<'PY'
import json, sys
tmp, enc = sys.argv[1:]
# GPT-2's byte-to-unicode table (SPEC 7.2), to turn ids into bytes without the C code
bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
cs = bs[:] + [256 + n for n in range(256 - len(bs))]
bs += [b for b in range(256) if b not in bs]
byte_of = {chr(c): b for b, c in zip(bs, cs)}
token = {i: bytes(byte_of[ch] for ch in s) for s, i in json.load(open(enc)).items()}
res = json.loads(open(f"{tmp}/fox.res.jsonl").read())
out = open(f"{tmp}/fox.out", "rb").read()
want = b"".join(token[i] for i in res["completion_ids"]).decode("utf-8", "replace")
ok_py = res["completion"] == want and res["new_tokens"] == len(res["completion_ids"]) == 40
ok_stream = out == res["completion"].encode() + b"\n"
print("ok text: the batch completion = Python's decoding of its ids' bytes" if ok_py else
      f"FAIL text: the batch completion = Python's decoding of its ids' bytes: {res['completion']!r} vs {want!r}")
print("ok text: the streamed stdout = the batch completion" if ok_stream else
      f"FAIL text: the streamed stdout = the batch completion: {out!r}")
# a stop string for the next check: 3 ASCII letters or spaces from the middle of the completion
text = res["completion"]
for k in range(8, len(text) - 3):
    s = text[k:k + 3]
    if all(c.isascii() and (c.isalpha() or c == " ") for c in s):
        open(f"{tmp}/stop", "w").write(s)
        open(f"{tmp}/stop.want", "w").write(text[:text.find(s)] + "\n")
        break
PY
if [ -s "$tmp/stop" ]; then
    "${G[@]}" --prompt "The quick brown fox" --stop "zzzq" --stop "$(cat "$tmp/stop")" >"$tmp/stop.out" 2>/dev/null
    cmp -s "$tmp/stop.out" "$tmp/stop.want" &&
        echo "ok --stop '$(cat "$tmp/stop")' cuts exactly before its first occurrence" ||
        echo "FAIL --stop '$(cat "$tmp/stop")': $(head -c 200 "$tmp/stop.out") vs $(head -c 200 "$tmp/stop.want")"
else
    echo "FAIL --stop: no ASCII stop string in the completion to test with"
fi
tmpl_no=$'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a color.\n\n### Response:'
tmpl_in=$'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:'
"${G[@]}" --alpaca --prompt "Name a color." >"$tmp/a1" 2>/dev/null
"${G[@]}" --prompt "$tmpl_no" >"$tmp/a2" 2>/dev/null
"${G[@]}" --alpaca --prompt "Translate." --input "Bonjour" >"$tmp/a3" 2>/dev/null
"${G[@]}" --prompt "$tmpl_in" >"$tmp/a4" 2>/dev/null
cmp -s "$tmp/a1" "$tmp/a2" && cmp -s "$tmp/a3" "$tmp/a4" && ! cmp -s "$tmp/a1" "$tmp/a3" &&
    echo "ok --alpaca (with and without --input) = the SPEC 6.2 template written out" ||
    echo "FAIL --alpaca = the SPEC 6.2 template written out"
printf 'The quick brown fox\n\nName a color.\n' | "${G[@]}" >"$tmp/stdin.out" 2>"$tmp/stdin.err"
"${G[@]}" --prompt "Name a color." >"$tmp/color.out" 2>/dev/null
cat "$tmp/fox.out" "$tmp/color.out" | cmp -s - "$tmp/stdin.out" &&
    [ "$(grep -c 'new tokens' "$tmp/stdin.err")" -eq 2 ] &&
    echo "ok stdin: one completion (and one stats line) per non-empty line" ||
    echo "FAIL stdin: $(head -c 300 "$tmp/stdin.out")"
grep -q "prompt 4 tokens, 40 new tokens, prompt [0-9.]* ms, [0-9.]* ms per new token, [0-9.]* tokens/s" "$tmp/fox.err" &&
    echo "ok the final stderr line: prompt tokens, new tokens, prompt ms, ms per new token, tokens/s" ||
    echo "FAIL the final stderr line: $(tail -1 "$tmp/fox.err")"

# ---- bad input: one line on stderr, exit 2
expect() { # NAME PATTERN -- CMD... (mpirun's own notes, blocks between lines of dashes, are not counted)
    local name=$1 pattern=$2
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err.all" </dev/null
    local rc=$? lines
    awk '/^-+$/ { skip = !skip; next } !skip' "$tmp/err.all" >"$tmp/err"
    lines=$(wc -l <"$tmp/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -qE -- "$pattern" "$tmp/err"; then
        echo "ok bad input: $name"
    else
        echo "FAIL bad input: $name: exit $rc, $lines lines, want /$pattern/: $(head -c 300 "$tmp/err")"
    fi
}
long=$(printf 'word %.0s' $(seq 100))
expect "prompt longer than n_ctx" "--prompt: the prompt has [0-9]+ tokens; the model's context \(n_ctx\) is 64.*refused, not truncated" -- \
    bin/generate "$T" --prompt "$long"
expect "empty prompt" "--prompt: the prompt is empty" -- bin/generate "$T" --prompt ""
: >"$tmp/empty.txt"
expect "empty prompt file" "empty.txt: the prompt is empty" -- bin/generate "$T" --prompt-file "$tmp/empty.txt"
expect "missing checkpoint" "nope: no such checkpoint file or run directory" -- bin/generate "$tmp/nope" --prompt x
echo "not hdf5" >"$tmp/fake.h5"
expect "not a checkpoint" "fake.h5: cannot open as a checkpoint" -- bin/generate "$tmp/fake.h5" --prompt x
cp "$T/ckpt/latest" "$tmp/cut.h5" && truncate -s 30000 "$tmp/cut.h5"
expect "truncated checkpoint" "cut.h5: " -- bin/generate "$tmp/cut.h5" --prompt x
mkdir -p "$tmp/emptyrun/ckpt"
expect "run directory without checkpoints" "no valid checkpoint" -- bin/generate "$tmp/emptyrun" --prompt x
printf '{"prompt": "fine"}\n{"prompt": "broken\n' >"$tmp/bad.jsonl"
expect "malformed batch line" "bad.jsonl:2: invalid JSON" -- bin/generate "$T" --batch-file "$tmp/bad.jsonl" --out "$tmp/o.jsonl"
printf '{"prompt_ids": [1, 2, 99999]}\n' >"$tmp/ids.jsonl"
expect "prompt id outside the vocabulary" "ids.jsonl:1: prompt token 2 is id 99999, outside" -- \
    bin/generate "$T" --batch-file "$tmp/ids.jsonl" --out "$tmp/o.jsonl"
expect "text beyond a small vocabulary" "prompt token 0 is id [0-9]+, outside the model's vocabulary of 250" -- \
    bin/generate "$tmp/gpt2" --prompt "Hello"
expect "top-p out of range" "--top-p: '1.5' is not a number in \[0, 1\]" -- bin/generate "$T" --top-p 1.5
expect "negative temperature" "--temperature: '-1'" -- bin/generate "$T" --temperature -1
expect "unknown option" "unexpected argument '--frobnicate'" -- bin/generate "$T" --frobnicate
expect "tp that does not divide the heads" "n_head 4" -- env OMP_NUM_THREADS=1 mpirun -n 3 bin/generate "$T" --prompt x
[ -e "$tmp/o.jsonl" ] && echo "FAIL bad input: an output file was written" || echo "ok bad input: no output file written"
bin/generate --help >"$tmp/help" 2>&1 && grep -q "usage: bin/generate" "$tmp/help" && echo "ok --help: usage, exit 0" ||
    echo "FAIL --help"
true
