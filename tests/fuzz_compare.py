"""Differential runs of tests/fuzz_programs.py's programs: gradjit against PyTorch 2.13.

    python -m tests.fuzz_compare N [FIRST_SEED] [--torch PYTHON]

runs programs FIRST_SEED .. FIRST_SEED+N-1 under gradjit in this process (caches shared
across programs, as in a long session) and under PyTorch in a subprocess of PYTHON
(default /tmp/refvenv/bin/python, or $GRADJIT_TORCH_PYTHON), then prints each program that
disagrees with what disagreed. `--emit-torch OUT` is the subprocess's side.
"""
from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

from tests.fuzz_programs import program
from tests.fuzz_run import run

TORCH_PYTHON = os.environ.get("GRADJIT_TORCH_PYTHON", "/tmp/refvenv/bin/python")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def filename(seed: int) -> str:
    return f"<fuzz {seed}>"


def run_all(seeds, torch) -> dict:
    return {s: run(program(s), torch, s, filename(s)) for s in seeds}


def torch_results(seeds, python: str = TORCH_PYTHON) -> dict:
    """The programs' records under real PyTorch (one subprocess, one thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "torch.pkl")
        env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
        subprocess.run([python, "-m", "tests.fuzz_compare", "--emit-torch", out,
                        *map(str, seeds)], check=True, env=env, cwd=ROOT)
        with open(out, "rb") as f:
            return pickle.load(f)


def close(a, b, dtype: str) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if dtype in ("float32", "float64"):
        tol = 1e-4 if dtype == "float32" else 1e-6   # f64 results may carry f32 rounding
        finite = np.abs(a[np.isfinite(a)])
        scale = max(1.0, float(finite.max(initial=0.0)))
        return bool(np.allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True))
    return bool(np.array_equal(a, b))


def diff_snapshot(ref, got, where: str) -> list:
    if ref[0] != got[0]:
        return [f"{where}: kind {got[0]} != {ref[0]} ({got!r:.80} vs {ref!r:.80})"]
    kind = ref[0]
    if kind == "error":
        return [] if ref[1][0] in got[1] else [f"{where}: error {got[1][0]} != {ref[1][0]}"]
    if kind == "tensor":
        _, dt, shape, val, rg = ref
        _, gdt, gshape, gval, grg = got
        out = []
        if (dt, shape, rg) != (gdt, gshape, grg):
            out.append(f"{where}: dtype/shape/requires_grad {(gdt, gshape, grg)} != "
                       f"{(dt, shape, rg)}")
        elif not close(val, gval, dt):
            out.append(f"{where}: values\n  got  {gval.tolist()}\n  torch {val.tolist()}")
        return out
    if kind == "ndarray":
        if (ref[1], ref[2]) != (got[1], got[2]):
            return [f"{where}: ndarray {got[1:3]} != {ref[1:3]}"]
        if close(ref[3], got[3], ref[1]):
            return []
        return [f"{where}: ndarray values {got[3]} != {ref[3]}"]
    if kind in ("list", "tuple"):
        if len(ref[1]) != len(got[1]):
            return [f"{where}: length {len(got[1])} != {len(ref[1])}"]
        return [d for i, (r, g) in enumerate(zip(ref[1], got[1]))
                for d in diff_snapshot(r, g, f"{where}[{i}]")]
    _, rtype, rv = ref
    _, gtype, gv = got
    if rtype != gtype:
        return [f"{where}: Python {gtype} {gv!r} != {rtype} {rv!r}"]
    if rtype == "float":
        ok = (math.isnan(rv) and math.isnan(gv)) or math.isclose(rv, gv, rel_tol=1e-4, abs_tol=1e-5)
    elif rtype == "list":
        ok = close(np.asarray(rv, dtype=float), np.asarray(gv, dtype=float), "float32") and \
            np.asarray(rv).shape == np.asarray(gv).shape
    else:
        ok = rv == gv
    return [] if ok else [f"{where}: {gv!r} != {rv!r}"]


def compare(ref: dict, got: dict) -> list:
    """What gradjit's run `got` does differently from PyTorch's `ref`."""
    out = []
    rr, gr = ref["records"], got["records"]
    gtags = [g[0] for g in gr]
    if "second backward" not in gtags:   # accepted by gradjit, refused by PyTorch (compat.md)
        rr = [r for r in rr if r[0] != "second backward"]
    for i, (r, g) in enumerate(zip(rr, gr)):
        if r[0] != g[0]:
            out.append(f"record {i}: tag {g[0]!r} (= {g[1]!r:.100}) != {r[0]!r} (= {r[1]!r:.100})")
            break
        found = diff_snapshot(r[1], g[1], f"record {i} {r[0]}")
        if found:
            out.extend(found)
            break
    if not out and len(rr) != len(gr):
        out.append(f"{len(gr)} records != {len(rr)}")
    re_, ge = ref["error"], got["error"]
    if (re_ is None) != (ge is None) or (re_ and (re_[0][0] not in ge[0] or re_[1] != ge[1])):
        out.append(f"uncaught error {ge} != torch {re_}")
    return out


def main(argv) -> int:
    if argv[:1] == ["--emit-torch"]:
        import torch
        torch.set_num_threads(1)
        with open(argv[1], "wb") as f:
            pickle.dump(run_all([int(s) for s in argv[2:]], torch), f)
        return 0
    python = TORCH_PYTHON
    if "--torch" in argv:
        i = argv.index("--torch")
        python = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    n = int(argv[0]) if argv else 100
    first = int(argv[1]) if len(argv) > 1 else 0
    seeds = list(range(first, first + n))
    import gradjit
    ref = torch_results(seeds, python)
    got = run_all(seeds, gradjit)
    bad = 0
    for s in seeds:
        found = compare(ref[s], got[s])
        if found:
            bad += 1
            print(f"---- seed {s}\n" + "\n".join(found) + "\n" + program(s), flush=True)
    errors = sum(r["error"] is not None for r in ref.values())
    print(f"{bad} of {n} programs disagree ({errors} end in an error under PyTorch)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
