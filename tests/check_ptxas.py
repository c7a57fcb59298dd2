#!/usr/bin/python3
"""Checks every kernel's ptxas resource usage against model/cuda/ptxas_budget.txt.

    tests/check_ptxas.py [--budget FILE] build/cuda/model/cuda/*.ptxas

Each .ptxas file is the stderr of `nvcc ... -Xptxas -v` for one .cu file (`make CUDA=1` saves them).
For every entry function and architecture ptxas reports, the script prints

    ok ptxas NAME sm_XX: R registers, S bytes smem, 0 spills
    FAIL ptxas NAME sm_XX: R registers, S bytes smem, P bytes spilled (what exceeded the budget)

with NAME demangled by c++filt when it is installed (a template's leading "void " return type is
dropped, so budget prefixes start with the kernel's own name). It exits 1 if any kernel is over budget,
if a file holds no kernel at all, or if ptxas reported an error; 2 on a bad command line or budget file.

What ptxas reports, per entry function and arch:
    ptxas info    : Compiling entry function '_Z5spillPfPKfi' for 'sm_90'
    ptxas info    : Function properties for _Z5spillPfPKfi
        1200 bytes stack frame, 1520 bytes spill stores, 1936 bytes spill loads
    ptxas info    : Used 32 registers, used 0 barriers, 1200 bytes cumulative stack size, 372 bytes cmem[0]
Static shared memory appears as ", N bytes smem" (absent means 0); dynamic shared memory is not known to
ptxas and is not checked here. "Function properties" of a non-inlined device function follow the entry
that calls it; their spills are added to that entry (their stack is already in its cumulative stack).
"""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BUDGET = os.path.join(HERE, "..", "model", "cuda", "ptxas_budget.txt")
KEYS = ("registers", "smem", "spill", "stack")

RE_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
RE_PROPS = re.compile(r"Function properties for (\S+)")
RE_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
RE_USED = re.compile(r"ptxas info\s*: Used (\d+) registers")
RE_SMEM = re.compile(r"(\d+) bytes smem")
RE_CUMSTACK = re.compile(r"(\d+) bytes cumulative stack size")
RE_LMEM = re.compile(r"(\d+) bytes lmem")
RE_ERROR = re.compile(r"^\s*ptxas (error|fatal)", re.I)


class BudgetError(Exception):
    pass


def parse_settings(tokens, where):
    out = {}
    for t in tokens:
        k, _, v = t.partition("=")
        if k == "arch":
            out[k] = v
            continue
        if k not in KEYS or not v.isdigit():
            raise BudgetError("%s: expected %s=N or arch=sm_XX, got '%s'" % (where, "|".join(KEYS), t))
        out[k] = int(v)
    return out


def load_budget(path):
    """Returns (default dict, [(prefix, arch or None, settings dict, line number)])."""
    default, overrides = None, []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = "%s:%d" % (path, n)
            words = line.split()
            if words[0] == "default":
                s = parse_settings(words[1:], where)
                missing = [k for k in KEYS if k not in s]
                if missing or "arch" in s:
                    raise BudgetError("%s: default must set %s (and no arch)" % (where, ", ".join(KEYS)))
                default = s
            elif words[0] == "kernel":
                i = len(words)
                while i > 1 and "=" in words[i - 1]:
                    i -= 1
                prefix = " ".join(words[1:i])
                if not prefix or i == len(words):
                    raise BudgetError("%s: expected 'kernel NAME-PREFIX key=N ...'" % where)
                s = parse_settings(words[i:], where)
                overrides.append((prefix, s.pop("arch", None), s, n))
            else:
                raise BudgetError("%s: expected a 'default' or 'kernel' line, got '%s'" % (where, words[0]))
    if default is None:
        raise BudgetError("%s: no 'default' line" % path)
    return default, overrides


def parse_ptxas(text):
    """Returns ([kernel dicts], [error lines]); a kernel dict has mangled, arch, registers, smem,
    stack, spill_stores, spill_loads."""
    kernels, errors = [], []
    cur = None  # the entry being compiled
    props_of = None  # name of the last "Function properties for"
    for line in text.splitlines():
        if RE_ERROR.search(line):
            errors.append(line.strip())
            continue
        m = RE_ENTRY.search(line)
        if m:
            cur = {"mangled": m.group(1), "arch": m.group(2), "registers": None, "smem": 0, "stack": 0,
                   "spill_stores": 0, "spill_loads": 0, "callees": []}
            kernels.append(cur)
            props_of = None
            continue
        m = RE_PROPS.search(line)
        if m:
            props_of = m.group(1)
            continue
        m = RE_FRAME.search(line)
        if m and cur is not None:
            frame, st, ld = (int(x) for x in m.groups())
            if props_of == cur["mangled"]:
                cur["stack"] = max(cur["stack"], frame)
            elif props_of:
                cur["callees"].append(props_of)
            cur["spill_stores"] += st
            cur["spill_loads"] += ld
            continue
        m = RE_USED.search(line)
        if m and cur is not None:
            cur["registers"] = int(m.group(1))
            for rx, key in ((RE_SMEM, "smem"), (RE_CUMSTACK, "stack"), (RE_LMEM, "stack")):
                mm = rx.search(line)
                if mm:
                    cur[key] = max(cur[key], int(mm.group(1))) if key == "stack" else int(mm.group(1))
    return kernels, errors


def demangle(names):
    names = sorted(set(names))
    out = {n: n for n in names}
    tool = shutil.which("c++filt")
    if tool and names:
        try:
            res = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True,
                                 check=True)
            for n, d in zip(names, res.stdout.splitlines()):
                out[n] = d[5:] if d.startswith("void ") and d != n else d
        except (OSError, subprocess.CalledProcessError):
            pass
    return out


def limits_for(name, mangled, arch, default, overrides, used):
    """The default, then every matching override from the shortest prefix to the longest (a longer,
    more specific prefix wins), an arch-specific one after an arch-less one of the same length."""
    lim = dict(default)
    hits = [o for o in overrides
            if (name.startswith(o[0]) or mangled.startswith(o[0])) and o[1] in (None, arch)]
    for prefix, a, s, n in sorted(hits, key=lambda o: (len(o[0]), o[1] is not None)):
        lim.update(s)
        used.add(n)
    return lim


def check(path, text, default, overrides, used, names):
    kernels, errors = parse_ptxas(text)
    lines, ok = [], True
    for e in errors:
        lines.append("FAIL ptxas %s: %s" % (path, e))
        ok = False
    if not kernels:
        lines.append("FAIL ptxas %s: no kernels found (not the stderr of nvcc -Xptxas -v?)" % path)
        return False, lines
    for k in kernels:
        name = names.get(k["mangled"], k["mangled"])
        lim = limits_for(name, k["mangled"], k["arch"], default, overrides, used)
        spill = k["spill_stores"] + k["spill_loads"]
        bad = []
        if k["registers"] is None:
            bad.append("no 'Used N registers' line")
        elif k["registers"] > lim["registers"]:
            bad.append("registers %d > %d" % (k["registers"], lim["registers"]))
        if k["smem"] > lim["smem"]:
            bad.append("smem %d > %d" % (k["smem"], lim["smem"]))
        if spill > lim["spill"]:
            bad.append("spill stores %d + loads %d > %d" % (k["spill_stores"], k["spill_loads"], lim["spill"]))
        if k["stack"] > lim["stack"]:
            bad.append("stack %d > %d" % (k["stack"], lim["stack"]))
        msg = "%s registers, %d bytes smem, %s" % (
            "?" if k["registers"] is None else k["registers"], k["smem"],
            "0 spills" if spill == 0 else "%d bytes spilled" % spill)
        if k["stack"]:
            msg += ", %d bytes stack" % k["stack"]
        if bad:
            ok = False
            lines.append("FAIL ptxas %s %s: %s (%s) [%s]" % (name, k["arch"], msg, "; ".join(bad), path))
        else:
            lines.append("ok ptxas %s %s: %s" % (name, k["arch"], msg))
    return ok, lines


def main(argv):
    budget, files = DEFAULT_BUDGET, []
    i = 0
    while i < len(argv):
        if argv[i] == "--budget" and i + 1 < len(argv):
            budget = argv[i + 1]
            i += 2
        elif argv[i] in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            files.append(argv[i])
            i += 1
    if not files:
        print("usage: tests/check_ptxas.py [--budget FILE] X.ptxas...", file=sys.stderr)
        return 2
    try:
        default, overrides = load_budget(budget)
    except (OSError, BudgetError) as e:
        print("check_ptxas: %s" % e, file=sys.stderr)
        return 2
    texts = {}
    for f in files:
        try:
            with open(f, errors="replace") as fh:
                texts[f] = fh.read()
        except OSError as e:
            print("check_ptxas: %s" % e, file=sys.stderr)
            return 2
    names = demangle(k["mangled"] for t in texts.values() for k in parse_ptxas(t)[0])
    used, all_ok, n_fail, n_ok = set(), True, 0, 0
    for f in files:
        ok, lines = check(f, texts[f], default, overrides, used, names)
        all_ok &= ok
        for line in lines:
            print(line)
            n_fail += line.startswith("FAIL")
            n_ok += line.startswith("ok")
    for prefix, arch, s, n in overrides:
        if n not in used:
            print("note: %s:%d: override for '%s'%s matched no kernel" % (
                budget, n, prefix, " on " + arch if arch else ""))
    print("check_ptxas: %d ok, %d FAIL, %d file(s)" % (n_ok, n_fail, len(files)))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
