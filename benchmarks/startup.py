"""python -m benchmarks.startup [--runs N] [--only chain mlp gmm lstm]: what a fresh process pays.

For each workload, N fresh processes each measure, from the interpreter's start:
  import   `import gradjit` (after `import numpy`, which every system pays alike)
  cold     the first call of jit(value_and_grad(f)) with an empty disk cache (trace,
           optimise, lower, LLVM, run)
  warm     the same first call in a second process that finds the object code on disk
and JAX's import and first call when JAX is installed (its own cache off). The workloads are
benchmarks.workloads' chain 1e6, mlp b=256, gmm d=10 and lstm T=20 (objectives shared through
benchmarks/objectives.py, which imports no JAX or PyTorch into the measured processes).
Medians, and the CPU time of each phase besides wall time: on a shared machine wall time also
counts the time other processes held the core.

NOTE: Python must be allowed to write bytecode (.pyc). With PYTHONDONTWRITEBYTECODE=1 every
fresh process compiles all of gradjit's modules from source again (~0.5 s); the children run
without it, and the report says if the parent had it set.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.objectives import gmm_objective, lower_index, lstm_loss

WORKLOADS = ("chain", "mlp", "gmm", "lstm")
F64_WORKLOADS = ("gmm", "lstm")


def _chain_args():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(10 ** 6).astype(np.float32) for _ in range(3)]


def _chain(m):
    return lambda x, w, b: (m.tanh(x * w + b) ** 2 * 0.5 + m.exp(-x * x)).sum(), (0, 1, 2)


def _mlp_args():
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((784, 256)) * 0.05).astype(np.float32),
            np.zeros(256, np.float32),
            (rng.standard_normal((256, 10)) * 0.05).astype(np.float32),
            np.zeros(10, np.float32),
            rng.standard_normal((256, 784)).astype(np.float32),
            np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]]


def _mlp(m, log_softmax):
    def f(w1, b1, w2, b2, x, onehot):
        h = m.maximum(x @ w1 + b1, 0)
        return -(onehot * log_softmax(h @ w2 + b2)).sum() / x.shape[0]
    return f, (0, 1, 2, 3)


def _gmm_args():
    """benchmarks.workloads' gmm d=10: k=25 components, n=1000 points, f64."""
    k, n, d = 25, 1000, 10
    rng = np.random.default_rng(2)
    return [rng.standard_normal(k), rng.standard_normal((k, d)),
            rng.standard_normal((k, d + d * (d - 1) // 2)) * 0.1, rng.standard_normal((n, d))]


def _gmm(m, take, lse):
    idx = lower_index(10)
    return lambda a, mu, q, x: gmm_objective(m, take, lse, a, mu, q, x, idx), (0, 1, 2)


def _lstm_args(steps: int = 20, batch: int = 16, hidden: int = 64):
    """benchmarks.workloads' lstm T=20: two layers, batch 16, hidden 64, f64."""
    rng = np.random.default_rng(3)
    return [rng.standard_normal((2 * hidden, 4 * hidden)) * 0.1, np.zeros(4 * hidden),
            rng.standard_normal((2 * hidden, 4 * hidden)) * 0.1, np.zeros(4 * hidden),
            rng.standard_normal((steps, batch, hidden))]


def _lstm(m, scan):
    return lambda *a: lstm_loss(m, scan, *a, 64), (0, 1, 2, 3)


ARGS = {"chain": _chain_args, "mlp": _mlp_args, "gmm": _gmm_args, "lstm": _lstm_args}


def _clock() -> tuple[float, float, float]:
    return time.perf_counter(), time.process_time(), time.thread_time()


def _since(t0) -> tuple[float, float, float]:
    """(wall, cpu, calling thread's cpu) milliseconds since t0 (cpu: every thread of the
    process; on a busy machine the calling thread's time is what stands for the wall time of
    its critical path, which other processes stretch)."""
    return (1e3 * (time.perf_counter() - t0[0]), 1e3 * (time.process_time() - t0[1]),
            1e3 * (time.thread_time() - t0[2]))


def child(system: str, workload: str) -> dict:
    """Runs in a fresh process: import, build, first call; prints the times as JSON."""
    args = ARGS[workload]()
    t0 = _clock()
    if system == "gradjit":
        import gradjit as m
        log_softmax = lambda z: m.log_softmax(z, axis=1)  # noqa: E731
        take, lse, scan = lambda t, i: t[:, m.tensor(i)], m.logsumexp, m.scan
        make = lambda f, argnums: m.jit(m.value_and_grad(f, argnums=argnums))  # noqa: E731
    else:
        import jax
        import jax.numpy as m
        import jax.scipy.special
        if workload in F64_WORKLOADS:
            jax.config.update("jax_enable_x64", True)
        log_softmax = lambda z: jax.nn.log_softmax(z, axis=1)  # noqa: E731
        take, lse, scan = lambda t, i: t[:, i], jax.scipy.special.logsumexp, jax.lax.scan
        make = lambda f, argnums: jax.jit(jax.value_and_grad(f, argnums=argnums))  # noqa: E731
    imported = _since(t0)
    f, argnums = {"chain": lambda: _chain(m), "mlp": lambda: _mlp(m, log_softmax),
                  "gmm": lambda: _gmm(m, take, lse), "lstm": lambda: _lstm(m, scan)}[workload]()
    t1 = _clock()
    value, grads = make(f, argnums)(*args)
    np.asarray(value), [np.asarray(g) for g in grads]
    return {"import": imported, "first": _since(t1)}


def _run_child(system: str, workload: str, cache: str) -> dict:
    env = dict(os.environ, GRADJIT_CACHE_DIR=cache, JAX_ENABLE_COMPILATION_CACHE="false")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([sys.executable, "-m", "benchmarks.startup", "--child", system,
                          workload], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(rows: list, phase: str, k: int) -> float:
    return statistics.median(r[phase][k] for r in rows)


def measure(workload: str, runs: int, systems: list) -> dict:
    """{label: (wall ms, cpu ms, calling thread's cpu ms)} medians over `runs` fresh
    processes."""
    rows: dict = {"cold": [], "warm": [], "jax": []}
    for _ in range(runs):
        cache = tempfile.mkdtemp(prefix="gradjit-startup-")
        try:
            rows["cold"].append(_run_child("gradjit", workload, cache))
            rows["warm"].append(_run_child("gradjit", workload, cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if "jax" in systems:
            rows["jax"].append(_run_child("jax", workload, tempfile.gettempdir()))
    out = {"import gradjit": rows["cold"], "gradjit cold first call": rows["cold"],
           "gradjit warm first call": rows["warm"], "import jax": rows["jax"],
           "jax first call": rows["jax"]}
    return {label: tuple(_median(r, "import" if label.startswith("import") else "first", k)
                         for k in range(3))
            for label, r in out.items() if r}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--only", nargs="*", default=list(WORKLOADS))
    p.add_argument("--child", nargs=2, metavar=("SYSTEM", "WORKLOAD"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(*a.child)))
        return
    systems = ["gradjit"]
    try:
        import jax  # noqa: F401
        systems.append("jax")
    except ImportError:
        pass
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set here; the measured children run without "
              "it (with it, each import recompiles every module: ~0.5 s)")
    for w in a.only:
        print(f"{w}: medians of {a.runs} fresh processes (wall ms / cpu ms / calling "
              "thread's cpu ms)")
        rows = measure(w, a.runs, systems)
        for label, (wall, cpu, thread) in rows.items():
            print(f"  {label:26s} {wall:8.1f} / {cpu:8.1f} / {thread:8.1f}")
        if "jax first call" in rows:      # issue 13's target: cold <= 0.5x JAX, wall and CPU
            (gw, gc, _), (jw, jc, _) = rows["gradjit cold first call"], rows["jax first call"]
            print(f"  {'cold / jax first call':26s} {gw / jw:7.2f}x / {gc / jc:7.2f}x")


if __name__ == "__main__":
    main()
