"""python -m benchmarks.compile_scaling [STEPS ...]: cold compile time against program size.

The program is an unrolled tanh RNN, h = tanh(h @ W + x_t) for STEPS steps, and its
value_and_grad: about 11 IR ops per step after optimisation. For each size it prints the IR
op count, gradjit's cold first call (trace + compile + run, disk cache off) with the part
spent in the runtime's compile (lowering, LLVM, machine code), and JAX's first call.
Compile time should grow linearly with the op count. One-time process costs (creating the
LLVM engine, binding the BLAS, starting JAX's backend) are paid before the first size.
"""
from __future__ import annotations

import os
import sys
import time

from benchmarks.__main__ import configure_threads


def rnn(m, steps: int):
    def f(w, xs):
        h = xs[0] * 0
        for t in range(steps):
            h = m.tanh(h @ w + xs[t])
        return (h * h).sum()
    return f


def gradjit_cold(gj, steps: int, args) -> tuple[int, float, float]:
    """(IR op count, seconds of the first call, seconds of it in runtime.compile)."""
    import runtime
    from runtime.engine import fresh_execution_engine
    from tracer import pipeline
    vg = gj.jit(gj.value_and_grad(rnn(gj, steps)))
    ops = len(vg.lower(*args).ir.body)
    runtime.clear_cache()
    pipeline.clear_cache()
    fresh_execution_engine()            # the engine would reuse code it compiled before
    fresh = gj.jit(gj.value_and_grad(rnn(gj, steps)))
    t0 = time.perf_counter()
    fresh(*args)
    total = time.perf_counter() - t0
    return ops, total, runtime.cache_info()["compile_seconds"]


def jax_cold(steps: int, args) -> float | None:
    from benchmarks.workloads import jax
    if jax is None:
        return None
    import jax.numpy as jnp
    fresh = jax.jit(jax.value_and_grad(rnn(jnp, steps)))
    jargs = [jnp.asarray(a) for a in args]
    t0 = time.perf_counter()
    jax.block_until_ready(fresh(*jargs))
    return time.perf_counter() - t0


def main(argv=None):
    steps_list = [int(s) for s in (argv or sys.argv[1:])] or [1, 10, 100]
    configure_threads(1)
    os.environ["GRADJIT_DISK_CACHE"] = "0"
    import numpy as np

    import gradjit as gj
    rng = np.random.default_rng(0)
    warm = (np.eye(16, dtype=np.float32), np.ones((1, 4, 16), np.float32))
    gradjit_cold(gj, 1, warm)           # one-time costs (LLVM, BLAS binding, JAX backend)
    jax_cold(1, warm)
    print(f"{'steps':>6} {'IR ops':>7} {'gradjit cold':>13} {'(compile)':>10} {'jax cold':>10}")
    for steps in steps_list:
        args = ((rng.standard_normal((32, 32)) * 0.3).astype(np.float32),
                rng.standard_normal((steps, 8, 32)).astype(np.float32))
        ops, total, compile_s = gradjit_cold(gj, steps, args)
        jx = jax_cold(steps, args)
        jax_text = f"{jx:9.3f}s" if jx is not None else "       n/a"
        print(f"{steps:6d} {ops:7d} {total:12.3f}s {compile_s:9.3f}s {jax_text}")


if __name__ == "__main__":
    main()
