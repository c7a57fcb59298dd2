#!/usr/bin/python3
"""bin/instruct: an instruction-following benchmark whose answers can be checked exactly.

  bin/instruct gen --out DIR [--train N] [--heldout N] [--seed S] [--tasks copy,reverse,...]
      DIR/train.json: N Alpaca records (an array, for bin/prepare alpaca), the tasks in turn;
      DIR/heldout.jsonl: N records per task (one per line, with its "task"), whose values never occur in
      train.json.
  bin/instruct eval CKPT_OR_RUN_DIR --data DIR/heldout.jsonl [--out COMPLETIONS.jsonl] [--json SCORES.json]
                    [--max-new-tokens N] [--threads N] [--generate PATH]
      greedy completions (bin/generate --alpaca --batch-file --temperature 0), then `score`.
  bin/instruct score --data DIR/heldout.jsonl --completions COMPLETIONS.jsonl [--json SCORES.json]
      exact match per task: the completion, without surrounding whitespace, equals the output.

Exit codes: 0 done, 1 internal error, 2 bad input or usage."""
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

from mt_cli import BadInput, Parser, run

# A small vocabulary, so that a small model sees every word often: words that are one GPT-2 token with
# and without a leading space (a word list is a token list wherever it appears, first in the input or
# the response, or after a space); the first ten are single tokens in capitals too, with and without it.
WORDS = "box key car bus ice red sea star king book cat dog".split()
UPPER_WORDS = WORDS[:10]

HELDOUT_SHARE = 5  # one value set in 5 (by hash) belongs to the held-out split


def words(rng, lo, hi, pool=WORDS):
    return tuple(rng.sample(pool, rng.randint(lo, hi)))


def numbers(rng, k, top):
    return tuple(rng.sample(range(1, top + 1), k))


def joined(values):
    return " ".join(str(v) for v in values)


class Task:
    """One kind of question: how to draw its values, its answer, and its phrasings (with `input`, where the
    values go in the input field, and inline, where they end the instruction and the input is empty)."""

    def __init__(self, name, simple, draw, answer, with_input, inline):
        self.name, self.simple, self.draw, self.answer = name, simple, draw, answer
        self.with_input, self.inline = with_input, inline

    def record(self, rng, values):
        text = joined(values)
        if rng.random() < 0.5:
            instruction, inp = rng.choice(self.with_input), text
        else:
            instruction, inp = rng.choice(self.inline).format(x=text), ""
        return {"instruction": instruction, "input": inp, "output": self.answer(values), "task": self.name}


TASKS = [
    Task("copy", True, lambda r: words(r, 3, 4), joined,
         ["Repeat these words exactly.", "Copy the following list of words.", "Write the words below again."],
         ["Repeat after me: {x}", "Say these words again: {x}"]),
    Task("reverse", True, lambda r: words(r, 3, 3), lambda v: joined(reversed(v)),
         ["Reverse the order of these words.", "Write these words backwards, last word first.",
          "List the words in reverse order."],
         ["Reverse the words: {x}", "Put these words in reverse order: {x}"]),
    Task("last", True, lambda r: words(r, 3, 4), lambda v: v[-1],
         ["What is the last word?", "Which word comes last in this list?", "Give the final word."],
         ["Name the last word of: {x}", "What is the last word in this list: {x}"]),
    Task("count", True, lambda r: words(r, 2, 5), lambda v: str(len(v)),
         ["How many words are there?", "Count the words.", "Give the number of words in this list."],
         ["How many words are in this list: {x}", "Count these words: {x}"]),
    Task("upper", True, lambda r: words(r, 2, 3, UPPER_WORDS), lambda v: joined(w.upper() for w in v),
         ["Write these words in capital letters.", "Convert the text to uppercase.",
          "Make every letter upper case."],
         ["Write in capital letters: {x}", "Uppercase this: {x}"]),
    Task("max", True, lambda r: numbers(r, 3, 20), lambda v: str(max(v)),
         ["Which number is the largest?", "Find the biggest number.", "Give the maximum of these numbers."],
         ["What is the largest of these numbers: {x}", "Find the maximum: {x}"]),
    Task("sort", True, lambda r: numbers(r, 3, 20), lambda v: joined(sorted(v)),
         ["Sort these numbers from smallest to largest.", "Put the numbers in increasing order.",
          "Arrange these numbers in ascending order."],
         ["Sort from smallest to largest: {x}", "Put in increasing order: {x}"]),
    Task("add", False, lambda r: (r.randint(0, 9), r.randint(0, 9)), lambda v: str(v[0] + v[1]),
         ["Add these two numbers.", "What is the sum of these numbers?", "Compute the total."],
         ["Give the sum of these numbers: {x}", "Add these numbers: {x}"]),
]
TASK_BY_NAME = {t.name: t for t in TASKS}


def in_heldout(task, values):
    """The split is a function of the values alone: never both, whatever the sizes or the seed."""
    digest = hashlib.sha256(f"{task.name}|{joined(values)}".encode()).digest()
    return digest[0] % HELDOUT_SHARE == 0


def draw_values(task, rng, heldout, avoid):
    for _ in range(100000):
        v = task.draw(rng)
        if in_heldout(task, v) == heldout and v not in avoid:
            return v
    return None  # the held-out value space is exhausted


def generate(tasks, n_train, n_heldout, seed):
    rng = random.Random(seed)
    train = [tasks[i % len(tasks)] for i in range(n_train)]
    train = [t.record(rng, draw_values(t, rng, False, ())) for t in train]
    heldout = []
    for t in tasks:
        seen = set()
        for _ in range(n_heldout):
            v = draw_values(t, rng, True, seen)
            if v is None:
                break
            seen.add(v)
            heldout.append(t.record(rng, v))
    return train, heldout


def read_jsonl(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise BadInput(f"{path}: cannot read {what}: {e.strerror}")
    rows = []
    for i, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise BadInput(f"{path}:{i}: not a JSON object: {e.msg}")
        if not isinstance(rows[-1], dict):
            raise BadInput(f"{path}:{i}: not a JSON object")
    return rows


def score(records, completions, data_path, comp_path):
    """Per task: [exact, n]; a missing or extra completion line is an error, not a miss."""
    if len(completions) != len(records):
        raise BadInput(f"{comp_path}: {len(completions)} completions for the {len(records)} records of {data_path}")
    per_task = {}
    for i, (r, c) in enumerate(zip(records, completions), 1):
        if r.get("task") not in TASK_BY_NAME or not isinstance(r.get("output"), str):
            raise BadInput(f"{data_path}:{i}: needs a known \"task\" and a string \"output\"")
        if not isinstance(c.get("completion"), str):
            raise BadInput(f"{comp_path}:{i}: no string \"completion\"")
        hits = per_task.setdefault(r["task"], [0, 0])
        hits[0] += c["completion"].strip() == r["output"]
        hits[1] += 1
    return per_task


def summary(per_task):
    """{task: accuracy, ..., "simple": over the simple tasks' records, "all": over every record}."""
    out = {name: e / n for name, (e, n) in per_task.items()}
    for key, keep in (("simple", lambda t: TASK_BY_NAME[t].simple), ("all", lambda t: True)):
        e = sum(v[0] for t, v in per_task.items() if keep(t))
        n = sum(v[1] for t, v in per_task.items() if keep(t))
        out[key] = e / n if n else 0.0
    return out


def print_table(per_task):
    print(f"{'task':<8} {'simple':<6} {'exact':>9}  accuracy")
    for name, (e, n) in per_task.items():
        print(f"{name:<8} {'yes' if TASK_BY_NAME[name].simple else 'no':<6} {e:>4}/{n:<4}  {100 * e / n:6.1f}%")
    s = summary(per_task)
    print(f"simple tasks: {100 * s['simple']:.1f}%   all tasks: {100 * s['all']:.1f}%")


def write_json(path, obj):
    if not path:
        return
    try:
        with open(path, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
    except OSError as e:
        raise BadInput(f"{path}: cannot write: {e.strerror}")


def cmd_gen(a):
    if a.train < 1 or a.heldout < 1:
        raise BadInput("gen: --train and --heldout must be at least 1")
    unknown = [n for n in a.tasks.split(",") if n not in TASK_BY_NAME]
    if unknown:
        raise BadInput(f"gen: --tasks: unknown task {unknown[0]!r} (tasks: {','.join(TASK_BY_NAME)})")
    tasks = [TASK_BY_NAME[n] for n in dict.fromkeys(a.tasks.split(","))]
    train, heldout = generate(tasks, a.train, a.heldout, a.seed)
    try:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "train.json"), "w") as f:
            json.dump(train, f, indent=0)
        with open(os.path.join(a.out, "heldout.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in heldout)
    except OSError as e:
        raise BadInput(f"{a.out}: cannot write: {e.strerror}")
    print(f"bin/instruct: {len(train)} train records in {a.out}/train.json, {len(heldout)} held-out records "
          f"({len(tasks)} tasks) in {a.out}/heldout.jsonl")


def cmd_score(a):
    per_task = score(read_jsonl(a.data, "the held-out records"), read_jsonl(a.completions, "the completions"),
                     a.data, a.completions)
    print_table(per_task)
    write_json(a.json, summary(per_task))


def complete(a, out):
    """bin/generate's greedy completions of the records in a.data into out; its failure is ours."""
    default_generate = os.path.join(os.path.dirname(os.path.abspath(__file__)), "generate")
    cmd = [a.generate or default_generate, a.ckpt, "--alpaca", "--batch-file", a.data, "--out", out,
           "--temperature", "0", "--max-new-tokens", str(a.max_new_tokens)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    try:
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise BadInput(f"{cmd[0]}: cannot run: {e.strerror}")
    if done.returncode:
        lines = done.stderr.strip().splitlines() or ["(no message)"]
        print(f"bin/instruct eval: bin/generate failed (exit {done.returncode}): {lines[-1]}", file=sys.stderr)
        sys.exit(done.returncode)
    return read_jsonl(out, "the completions")


def cmd_eval(a):
    records = read_jsonl(a.data, "the held-out records")
    if a.out:
        completions, out = complete(a, a.out), a.out
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "completions.jsonl")
            completions = complete(a, out)
    per_task = score(records, completions, a.data, out)
    print_table(per_task)
    write_json(a.json, summary(per_task))


def parser():
    p = Parser("bin/instruct", __doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen", help="write train.json and heldout.jsonl")
    g.add_argument("--out", required=True)
    g.add_argument("--train", type=int, default=4000, help="train records (default 4000)")
    g.add_argument("--heldout", type=int, default=40, help="held-out records per task (default 40)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--tasks", default=",".join(TASK_BY_NAME), help="comma-separated (default: all)")
    s = sub.add_parser("score", help="exact match per task of a completions file")
    s.add_argument("--data", required=True)
    s.add_argument("--completions", required=True)
    s.add_argument("--json")
    e = sub.add_parser("eval", help="greedy completions by bin/generate, then score")
    e.add_argument("ckpt", help="a checkpoint file or a run directory")
    e.add_argument("--data", required=True)
    e.add_argument("--out", help="keep the completions here")
    e.add_argument("--json")
    e.add_argument("--max-new-tokens", type=int, default=20)
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("--generate", help="the bin/generate to run (default: next to this program)")
    return p


def main():
    a = parser().parse_args()
    run("bin/instruct", {"gen": cmd_gen, "score": cmd_score, "eval": cmd_eval}[a.cmd], a)


if __name__ == "__main__":
    main()
