#!/usr/bin/python3
"""Checks of bin/instruct (generator and scorer) and bin/plot, run by tests/test_instruct.sh:
  instruct_check.py TMPDIR
Each check prints "ok NAME" or "FAIL NAME: why". The answers are recomputed here from the values in each
record's text, independently of the generator's code."""
import json
import os
import subprocess
import sys

tmp = sys.argv[1]


def check(ok, name, why=""):
    print(f"ok {name}" if ok else f"FAIL {name}: {why}")


def run(*args):
    p = subprocess.run(list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def one_line_exit_2(name, args, pattern):
    rc, _, err = run(*args)
    lines = err.strip().splitlines()
    check(rc == 2 and len(lines) == 1 and pattern in lines[0], name,
          f"exit {rc}, stderr {err.strip()[:300]!r}, want one line with {pattern!r}")


def values_of(r):
    """The values the record asks about: the input, or the end of the instruction after its last ': '."""
    text = r["input"] if r["input"] else r["instruction"].rsplit(": ", 1)[1]
    return text.split()


def expected(task, v):
    nums = lambda: [int(x) for x in v]
    return {"copy": lambda: " ".join(v), "reverse": lambda: " ".join(v[::-1]), "last": lambda: v[-1],
            "count": lambda: str(len(v)), "upper": lambda: " ".join(w.upper() for w in v),
            "max": lambda: str(max(nums())), "sort": lambda: " ".join(map(str, sorted(nums()))),
            "add": lambda: str(sum(nums()))}[task]()


# ---- the generator
gen = os.path.join(tmp, "gen")
rc, out, err = run("bin/instruct", "gen", "--out", gen, "--train", "2400", "--heldout", "30", "--seed", "7")
check(rc == 0, "gen runs", err)
train = json.load(open(f"{gen}/train.json"))
held = [json.loads(l) for l in open(f"{gen}/heldout.jsonl")]
tasks = sorted({r["task"] for r in train})
per_task = {t: sum(r["task"] == t for r in held) for t in tasks}
# add draws from 100 pairs, one in 5 of them held out: its held-out split is all of them
check(len(train) == 2400 and len(tasks) == 8 and 15 <= per_task["add"] < 30 and
      all(n == 30 for t, n in per_task.items() if t != "add"), "gen sizes",
      f"{len(train)} train, held-out per task {per_task}")
check(all(set(r) == {"instruction", "input", "output", "task"} and all(isinstance(x, str) for x in r.values())
          for r in train + held), "records are Alpaca records with a task")
wrong = [r for r in train + held if expected(r["task"], values_of(r)) != r["output"]]
check(not wrong, "every answer is right (recomputed from the record's text)", str(wrong[:2]))
key = lambda r: (r["task"], " ".join(values_of(r)))
check(not {key(r) for r in train} & {key(r) for r in held}, "train and held-out values are disjoint",
      str(sorted({key(r) for r in train} & {key(r) for r in held})[:3]))
check(len({key(r) for r in held}) == len(held), "held-out records are distinct")
for t in tasks:
    rows = [r for r in train if r["task"] == t]
    with_input = {r["instruction"] for r in rows if r["input"]}
    inline = {r["instruction"].rsplit(": ", 1)[0] for r in rows if not r["input"]}
    check(len(with_input) >= 3 and len(inline) >= 2, f"{t}: several phrasings, with and without input",
          f"{len(with_input)} with input, {len(inline)} inline")
rc, _, _ = run("bin/instruct", "gen", "--out", f"{tmp}/gen2", "--train", "2400", "--heldout", "30", "--seed", "7")
same = rc == 0 and all(open(f"{gen}/{f}").read() == open(f"{tmp}/gen2/{f}").read()
                       for f in ("train.json", "heldout.jsonl"))
check(same, "the same seed gives the same files")
rc, _, _ = run("bin/instruct", "gen", "--out", f"{tmp}/gen3", "--train", "500", "--heldout", "60", "--seed", "8")
held3 = [json.loads(l) for l in open(f"{tmp}/gen3/heldout.jsonl")]
check(rc == 0 and not {key(r) for r in train} & {key(r) for r in held3},
      "the split depends on the values only (another seed and size: still disjoint from train)")
one_line_exit_2("gen refuses an unknown task", ["bin/instruct", "gen", "--out", gen, "--tasks", "copy,nope"],
                "unknown task 'nope'")
one_line_exit_2("gen usage error", ["bin/instruct", "gen"], "--out")

# ---- the scorer: even lines right (with whitespace around), odd lines wrong in a way strip() keeps
comp = os.path.join(tmp, "comp.jsonl")
with open(comp, "w") as f:
    for i, r in enumerate(held):
        c = f" {r['output']}\n" if i % 2 == 0 else r["output"] + "."
        f.write(json.dumps({"line": i + 1, "completion": c}) + "\n")
rc, out, err = run("bin/instruct", "score", "--data", f"{gen}/heldout.jsonl", "--completions", comp,
                   "--json", f"{tmp}/scores.json")
scores = json.load(open(f"{tmp}/scores.json")) if rc == 0 else {}
want = {t: sum(1 for i, r in enumerate(held) if r["task"] == t and i % 2 == 0) / per_task[t] for t in tasks}
simple = [i for i, r in enumerate(held) if r["task"] != "add"]
ok = rc == 0 and all(abs(scores[t] - want[t]) < 1e-12 for t in tasks) and \
    abs(scores["simple"] - sum(1 for i in simple if i % 2 == 0) / len(simple)) < 1e-12 and \
    abs(scores["all"] - sum(1 for i in range(len(held)) if i % 2 == 0) / len(held)) < 1e-12
check(ok, "score: exact match per task, simple tasks and all", f"{err} {scores} want {want}")
check("add      no" in out and "simple tasks:" in out, "score prints the table", out)
with open(f"{tmp}/short.jsonl", "w") as f:
    f.writelines(open(comp).readlines()[:-1])
one_line_exit_2("score refuses a missing completion",
                ["bin/instruct", "score", "--data", f"{gen}/heldout.jsonl", "--completions", f"{tmp}/short.jsonl"],
                f"{len(held) - 1} completions for the {len(held)} records")
with open(f"{tmp}/bad.jsonl", "w") as f:
    f.writelines(open(comp).readlines()[:5] + ["{not json\n"] + open(comp).readlines()[6:])
one_line_exit_2("score names a malformed line",
                ["bin/instruct", "score", "--data", f"{gen}/heldout.jsonl", "--completions", f"{tmp}/bad.jsonl"],
                "bad.jsonl:6: not a JSON object")
one_line_exit_2("eval of a missing checkpoint",
                ["bin/instruct", "eval", f"{tmp}/nothing", "--data", f"{gen}/heldout.jsonl"], "bin/generate failed")

# ---- bin/plot
def run_dir(name, rows, config=None):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/metrics.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    if config:
        json.dump(config, open(f"{d}/config.json", "w"))
    return d


a = run_dir("run-a", [{"step": s, "tokens": 1024 * s, "loss": 5.0 / s} for s in range(1, 41)] +
            [{"step": 20, "tokens": 20480, "val_loss": 0.4}, {"step": 40, "tokens": 40960, "val_loss": 0.2}])
b = run_dir("run-b", [{"step": s, "loss": 6.0 / s} for s in range(1, 31)] + [{"step": 30, "val_loss": None}],
            {"train": {"global_batch": 8}, "data": {"seq_len": 64}})
png = os.path.join(tmp, "loss.png")
rc, out, err = run("bin/plot", a, b, "--out", png, "--title", 'two "runs"')
data = open(png, "rb").read() if os.path.exists(png) else b""
check(rc == 0 and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, "plot writes a PNG (two runs)",
      f"exit {rc}: {err.strip()[:200]}, {len(data)} bytes")
check(not os.path.exists(png + ".tmp"), "plot leaves no temporary file")
rc, out, _ = run("bin/plot", "--help")
check(rc == 0 and "RUN_DIR" in out, "plot --help")
one_line_exit_2("plot: missing run directory", ["bin/plot", f"{tmp}/none", "--out", png], "not a run directory")
os.makedirs(f"{tmp}/empty", exist_ok=True)
one_line_exit_2("plot: no metrics.jsonl", ["bin/plot", a, f"{tmp}/empty", "--out", png], "metrics.jsonl: cannot read")
bad = run_dir("run-bad", [{"step": 1, "tokens": 64, "loss": 3.0}])
with open(f"{bad}/metrics.jsonl", "a") as f:
    f.write('{"step": 2, "loss": \n')
one_line_exit_2("plot: malformed line", ["bin/plot", bad, "--out", png], "metrics.jsonl:2: not a metrics row")
none = run_dir("run-none", [])
one_line_exit_2("plot: no loss rows", ["bin/plot", none, "--out", png], "no loss rows")
old = run_dir("run-old", [{"step": 1, "loss": 3.0}])
one_line_exit_2("plot: rows without tokens need config.json", ["bin/plot", old, "--out", png], "config.json")
one_line_exit_2("plot: usage", ["bin/plot", a], "--out")
check(open(png, "rb").read() == data, "plot: a refused run leaves the existing PNG as it was")
