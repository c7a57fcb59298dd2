#!/usr/bin/env bash
# The config key tables (train/run_config.c, model/config.c) against README and against bin/train's behaviour:
# README's two key tables are the rows `bin/train --help` prints; the resolved config (--dry-run) holds exactly
# the tables' keys, in their order; every literal default is what a config without the key gets; every
# computed default follows its stated rule and yields to a given value; every number's stated bounds, every
# choice list and every required key are the ones enforced; unknown keys are refused in every section.
set -u
cd "$(dirname "$0")/.."
exec /usr/bin/python3 - <<'PY'
import difflib, json, math, os, re, subprocess, tempfile
from concurrent.futures import ThreadPoolExecutor

tmp = tempfile.mkdtemp()
os.environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
                  OMPI_MCA_rmaps_base_oversubscribe="1")

def report(name, good, why=""):
    print(f"ok {name}" if good else f"FAIL {name}: {why}")

def train(*args, launcher=()):
    p = subprocess.run([*launcher, "bin/train", *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr.strip()

# --- README's tables are what --help prints --------------------------------------------------------------
rc, help_out, err = train("--help")
report("help", rc == 0 and help_out.startswith("usage: bin/train"), f"exit {rc}, stderr {err[:200]}")
help_lines, readme = help_out.split("\n"), open("README.md").read().split("\n")

def help_table(title):
    i = next((k + 1 for k, l in enumerate(help_lines) if l.startswith(title)), len(help_lines))
    j = i
    while j < len(help_lines) and help_lines[j].startswith("|"):
        j += 1
    return help_lines[i:j]

def readme_table(name):
    start = [k for k, l in enumerate(readme) if l.startswith(f"<!-- {name}:")]
    end = [k for k, l in enumerate(readme) if l.startswith(f"<!-- end of {name}")]
    return readme[start[0] + 1:end[0]] if len(start) == 1 and len(end) == 1 else []

tables = {}  # key path -> (values, default), per table
for name, title in (("run config keys", "Run config keys"), ("model config keys", "Model config keys")):
    h, r = help_table(title), readme_table(name)
    diff = [l for l in difflib.unified_diff(r, h, "README", "--help", n=0, lineterm="") if l[:1] in "+-"]
    report(f"readme.{name.replace(' ', '-')}", h == r and len(h) > 2, "; ".join(diff)[:800] or "no table")
    cells = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in h[2:]]
    tables[name] = {key.strip("`"): (values, default) for key, values, default, _ in cells}
rows = {}  # every key path of a run config, in order: the run config's `model` is the model table's keys
for key, row in tables["run config keys"].items():
    rows.update({f"model.{k}": r for k, r in tables["model config keys"].items()} if key == "model" else {key: row})

# --- a minimal run config: the model's required keys and data.train -------------------------------------
tiny = json.load(open("configs/models/tiny-gptj.json"))
bare = {k: v for k, v in tiny.items() if k == "bias" or rows.get(f"model.{k}", ("", ""))[1] == "(required)"}
run_path = f"{tmp}/minimal.json"
json.dump({"model": bare, "data": {"train": f"{tmp}/none.h5"}}, open(run_path, "w"))

def leaves(o, prefix=""):
    for k, v in o.items():
        if isinstance(v, dict):
            yield from leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v

def resolved(*sets, launcher=()):
    rc, out, err = train(run_path, "--dry-run", *[a for s in sets for a in ("--set", s)], launcher=launcher)
    return dict(leaves(json.loads(out.split("\nparams:")[0]))) if rc == 0 else {"error": err}

got = resolved()
report("resolved-keys", list(got) == list(rows), f"resolved {list(got)} vs tables {list(rows)}")

def literal(values, default):  # a choice or a string is written bare, the rest as JSON
    text = default.strip("`")
    return text if values == "string" or values.startswith("`") and "true" not in values else json.loads(text)

bad = [f"{k}: {got.get(k)!r} vs {d}" for k, (v, d) in rows.items() if d.startswith("`") and got.get(k) != literal(v, d)]
report("literal-defaults", "error" not in got and not bad, "; ".join(bad) or got.get("error"))

# --- computed defaults (a default in words): each rule, and a given value wins over it -------------------
big = resolved("model.n_ctx=2048", "train.micro_batch=3", "train.lr=0.01", "train.steps=100",
               "train.warmup_steps=10", "model.vocab_size=300")
short = resolved("train.steps=5", "train.warmup_steps=10")
two = resolved("train.global_batch=2", launcher=("mpirun", "-n", "2"))
lora = resolved("train.lora.rank=4", "train.init_from=base.h5")
def close(a, b):  # cJSON prints 15 digits when they read back within an ulp or so
    return isinstance(a, float) and math.isclose(a, b, rel_tol=1e-15)

rules = {
    "run_dir": got.get("run_dir") == "runs/minimal",
    "threads": got.get("threads") == len(os.sched_getaffinity(0)),
    "parallel.zero": got.get("parallel.zero") == 0 and two.get("parallel.zero") == 1,
    "data.seq_len": got.get("data.seq_len") == min(bare["n_ctx"], 1024) and big.get("data.seq_len") == 1024,
    "train.global_batch": got.get("train.global_batch") == 1 and big.get("train.global_batch") == 3,
    "train.end_lr": close(got.get("train.end_lr"), 0.1 * 6e-4) and close(big.get("train.end_lr"), 0.1 * 0.01),
    "train.anneal_steps": big.get("train.anneal_steps") == 90 and short.get("train.anneal_steps") == 0,
    "model.loss_vocab": got.get("model.loss_vocab") == bare["vocab_size"] and big.get("model.loss_vocab") == 300,
    "train.lora.alpha": lora.get("train.lora.alpha") == 4,
}
computed = {k for k, (v, d) in rows.items() if d[:1] not in "`("}
report("computed-defaults", computed == set(rules) and all(rules.values()),
       f"keys without a rule here or rules without a key: {sorted(computed ^ set(rules))}; "
       f"rules failed: {[k for k, good in rules.items() if not good]}; {[r.get('error') for r in (big, short, two, lora)]}")
given = {"run_dir": f"{tmp}/run", "threads": 1, "parallel.zero": 1, "data.seq_len": 7, "train.global_batch": 5,
         "train.end_lr": 0.003, "train.anneal_steps": 4, "model.loss_vocab": 100, "train.lora.alpha": 2}
r = resolved(*[f"{k}={json.dumps(v)}" for k, v in given.items()])
report("computed-defaults-given", all(r.get(k) == v for k, v in given.items()), f"{r}")

# --- bounds, choices, required keys, unknown keys: what the tables say is what bin/train enforces --------
def bound(text):
    m = re.fullmatch(r"2\^(\d+)", text)
    return 2 ** int(m.group(1)) if m else json.loads(text)

cases = []  # (name, arguments, what passes: "ok" or a pattern for the one stderr line of exit 2)

def refused(name, args, pattern):
    cases.append((name, args, pattern))

for key, (values, default) in rows.items():
    sets = lambda value: [run_path, "--dry-run", "--set", f"{key}={value}"]
    m = re.fullmatch(r"(integer|number) in \[(\S+), (\S+)\]", values)
    if m and m.group(1) == "integer":  # the message states the enforced bounds
        lo, hi = bound(m.group(2)), bound(m.group(3))
        refused(f"bounds.{key}", sets(hi + 1 if hi < 2**53 else hi * 2), rf"--set {key}: \S+ is outside \[{lo}, {hi}\]$")
    elif m:  # each bound accepted, the next double beyond it refused
        lo, hi = bound(m.group(2)), bound(m.group(3))
        cases += [(f"bounds.{key}.lo", sets(repr(lo)), "ok"), (f"bounds.{key}.hi", sets(repr(hi)), "ok")]
        refused(f"bounds.{key}.below", sets(repr(math.nextafter(lo, -math.inf))), rf"--set {key}: \S+ is outside \[")
        refused(f"bounds.{key}.above", sets(repr(math.nextafter(hi, math.inf))), rf"--set {key}: \S+ is outside \[")
    elif values.startswith("`") and "true" not in values:
        names = re.findall(r"`([^`]+)`", values)
        listed = ", ".join(f'"{n}"' for n in names[:-1]) + f' or "{names[-1]}"'
        refused(f"choices.{key}", sets("nonsense"), f"--set {key}: must be {re.escape(listed)}$")
        # a choice that a rule between keys ties to another key's value gets that value too
        needs = {("data.loss_on", "all"): ["--set", "data.kind=examples"]}
        cases += [(f"choices.{key}.{n}", sets(n) + needs.get((key, n), []), "ok") for n in names]
    if key.startswith("model.") and default == "(required)":
        parts, model = key.split(".")[1:], json.loads(json.dumps(bare))
        (model[parts[0]] if len(parts) > 1 else model).pop(parts[-1])
        path = f"{tmp}/without-{key}.json"
        json.dump({"model": model, "data": {"train": "x.h5"}}, open(path, "w"))
        refused(f"required.{key}", [path, "--dry-run"], rf"without-{re.escape(key)}\.json: {re.escape(key)}: missing \(required\)$")
for section in sorted({k.rsplit(".", 1)[0] + "." for k in rows if "." in k} | {""}):
    refused(f"unknown-key.{section or 'top'}", [run_path, "--dry-run", "--set", f"{section}bogus=1"],
            rf"--set {section}bogus: unknown key$")
json.dump({"model": bare, "data": {}}, open(f"{tmp}/nodata.json", "w"))
refused("required.data.train", [f"{tmp}/nodata.json"], r"nodata\.json: data\.train: missing \(required\)$")
cases.append(("dry-run-needs-no-data.train", [f"{tmp}/nodata.json", "--dry-run"], "ok"))

def run_case(case):
    name, args, want = case
    rc, out, err = train(*args)
    if name == "choices.backend.cuda" and not rc == 0:  # a build without CUDA says so, naming the key
        want = r"--set backend: this build has no CUDA backend"
    good = rc == 0 if want == "ok" else rc == 2 and "\n" not in err and re.search(want, err)
    return name, good, f"{' '.join(args[2:]) or args[0]}: exit {rc}, stderr {err[:200]!r}, want {want!r}"

with ThreadPoolExecutor(2) as pool:
    for name, good, why in pool.map(run_case, cases):
        report(name, good, why)
PY
