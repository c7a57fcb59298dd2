#!/usr/bin/python3
"""bin/plot: training and validation loss of one or several runs against tokens, as a PNG (gnuplot).

  bin/plot RUN_DIR... --out loss.png [--title TEXT] [--size W,H]

Each RUN_DIR is a bin/train run directory: its metrics.jsonl gives the training loss of every step (a thin
line) and the validation loss of every evaluation (points joined by a dashed line, the same colour), at the
tokens trained on so far (each row's "tokens"; rows written before that field existed use step x
global_batch x seq_len from the run's config.json). A resumed run has repeated steps; the last row of each
step is the one kept. The PNG is written as OUT.tmp and renamed when gnuplot has finished.

Exit codes: 0 done, 1 internal error (gnuplot failed), 2 bad input (a missing run directory, a run without
metrics, a malformed line, gnuplot not installed: `make deps` installs gnuplot-nox)."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from mt_cli import BadInput, Parser, run


def tokens_per_step(run_dir):
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path) as f:
            cfg = json.load(f)
        return cfg["train"]["global_batch"] * cfg["data"]["seq_len"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BadInput(f"{path}: needed for rows without \"tokens\", and not a readable run config")


def read_run(run_dir):
    """(train, val): lists of (tokens, loss) in step order."""
    if not os.path.isdir(run_dir):
        raise BadInput(f"{run_dir}: not a run directory")
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror}); is {run_dir} a bin/train run directory?")
    train, val, per_step = {}, {}, None
    for i, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            step = row["step"]
            key = "loss" if "loss" in row else "val_loss"
            loss = row[key]
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{path}:{i}: not a metrics row (a JSON object with step and loss or val_loss)")
        if not isinstance(step, int) or not isinstance(loss, (int, float)) and loss is not None:
            raise BadInput(f"{path}:{i}: step must be an integer and the loss a number")
        if "tokens" in row:
            tokens = row["tokens"]
        else:
            per_step = per_step or tokens_per_step(run_dir)
            tokens = step * per_step
        if loss is not None:  # a non-finite loss is written as null: a gap in the curve
            (train if key == "loss" else val)[step] = (tokens, loss)
    if not train and not val:
        raise BadInput(f"{path}: no loss rows")
    return [train[s] for s in sorted(train)], [val[s] for s in sorted(val)]


def labels(run_dirs):
    """The folder names, or the whole paths when two runs share a folder name."""
    names = [os.path.basename(os.path.normpath(d)) for d in run_dirs]
    return names if len(set(names)) == len(names) else [os.path.normpath(d) for d in run_dirs]


def gp_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(runs, tmp, out, title, size):
    """The gnuplot program: one colour per run, training solid and validation dashed with points."""
    lines = [f"set terminal pngcairo noenhanced size {size[0]},{size[1]} font 'sans,10'",
             f"set output {gp_string(out)}", f"set title {gp_string(title)}", "set xlabel 'tokens'",
             "set ylabel 'loss (nats per counted token)'", "set format x '%.1s%c'", "set grid",
             "set key outside right top", "set datafile missing 'nan'"]
    plots = []
    for k, (name, train, val) in enumerate(runs):
        for kind, rows in (("train", train), ("val", val)):
            if not rows:
                continue
            data = os.path.join(tmp, f"{k}.{kind}")
            with open(data, "w") as f:
                f.writelines(f"{t} {l!r}\n" for t, l in rows)
            style = (f"with lines lw 1 lc {k + 1}" if kind == "train" else f"with linespoints lw 2 dt 2 pt 7 lc {k + 1}")
            plots.append(f"{gp_string(data)} using 1:2 {style} title {gp_string(f'{name} {kind}')}")
    lines.append("plot " + ", \\\n     ".join(plots))
    return "\n".join(lines) + "\n"


def size_arg(s):
    try:
        w, h = (int(x) for x in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {s!r}: must be W,H in pixels")
    if not (100 <= w <= 10000 and 100 <= h <= 10000):
        raise argparse.ArgumentTypeError(f"--size {s!r}: width and height must be 100 to 10000 pixels")
    return w, h


def check_inputs(a):
    runs = [(name, *read_run(d)) for name, d in zip(labels(a.runs), a.runs)]
    if not shutil.which("gnuplot"):
        raise BadInput("gnuplot: not found (make deps installs gnuplot-nox)")
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        raise BadInput(f"{a.out}: the folder {out_dir} does not exist")
    return runs


def main():
    p = Parser("bin/plot", __doc__)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--title", default="loss against tokens")
    p.add_argument("--size", type=size_arg, default=(900, 540), help="W,H in pixels (default 900,540)")
    a = p.parse_args()
    runs = run("bin/plot", check_inputs, a)
    tmp_out = a.out + ".tmp"
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(["gnuplot"], input=script(runs, tmp, tmp_out, a.title, a.size), text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode:
        err = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        print(f"bin/plot: gnuplot failed (exit {done.returncode}): {err}", file=sys.stderr)
        if os.path.exists(tmp_out):
            os.unlink(tmp_out)
        sys.exit(1)
    os.replace(tmp_out, a.out)
    print(f"bin/plot: {a.out} ({len(runs)} run{'s' if len(runs) > 1 else ''})")


if __name__ == "__main__":
    main()
