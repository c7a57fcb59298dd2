"""Result checks for tests/test_slurm.sh (run with /usr/bin/python3, which has h5py).

compare.py losses NAME REF_RUN_DIR RUN_DIR STEPS TOL
    the first STEPS steps, which both runs must have, lose the same in RUN_DIR/metrics.jsonl as in REF's to
    TOL relative (TOL 0: bit for bit, as
    printed, which round-trips float32). A resumed run may repeat steps after its last checkpoint; the
    last row of each step counts.
compare.py params NAME REF_RUN_DIR RUN_DIR
    every /params dataset of RUN_DIR/ckpt/latest is bitwise equal to REF's, and both are the same step.
Prints one "ok NAME: ..." or "FAIL NAME: ..." line.
"""
import json
import sys


def losses(run_dir):
    rows = {}
    with open(f"{run_dir}/metrics.jsonl") as f:
        for line in f:
            r = json.loads(line)
            if "loss" in r and "step" in r:
                rows[int(r["step"])] = float(r["loss"])
    return rows


def cmp_losses(name, ref, run, steps, tol):
    try:
        a, b = losses(ref), losses(run)
    except (OSError, ValueError) as e:
        return f"FAIL {name}: {e}"
    want = list(range(1, int(steps) + 1))  # the first `steps` steps, which both runs must have
    if not set(want) <= set(a) or not set(want) <= set(b):
        return f"FAIL {name}: steps {len(a)} and {len(b)} rows, want 1..{steps}"
    worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in want)
    if worst > float(tol) or (float(tol) == 0 and any(a[s] != b[s] for s in want)):
        first = next(s for s in want if a[s] != b[s])
        return f"FAIL {name}: worst relative difference {worst:.3e} > {tol} (first at step {first})"
    return f"ok {name}: {steps} losses, worst relative difference {worst:.1e}"


def cmp_params(name, ref, run):
    import h5py
    import numpy as np

    try:
        with h5py.File(f"{ref}/ckpt/latest", "r") as fa, h5py.File(f"{run}/ckpt/latest", "r") as fb:
            sa, sb = int(fa.attrs.get("step", -1)), int(fb.attrs.get("step", -2))
            if sa != sb:
                return f"FAIL {name}: final checkpoints at steps {sa} and {sb}"
            ka, kb = sorted(fa["params"].keys()), sorted(fb["params"].keys())
            if ka != kb or not ka:
                return f"FAIL {name}: parameter names differ ({len(ka)} vs {len(kb)})"
            bad = [k for k in ka if not np.array_equal(fa["params"][k][()].view(np.uint8),
                                                       fb["params"][k][()].view(np.uint8))]
            if bad:
                return f"FAIL {name}: {len(bad)} of {len(ka)} tensors differ, e.g. {bad[0]}"
            return f"ok {name}: {len(ka)} parameter tensors bit-identical at step {sa}"
    except (OSError, KeyError) as e:
        return f"FAIL {name}: {e}"


if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    print(cmp_losses(*args) if what == "losses" else cmp_params(*args))
