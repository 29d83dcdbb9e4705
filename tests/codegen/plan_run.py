"""Helpers shared by test_light_inline.py and test_window_reuse.py: a function built and run
with some plan rule patched, its executable freed after (so that a second build of the same
symbol compiles afresh: runtime.engine's reuse), inputs sprinkled with special values, and
the CNN's max-pool step both test."""
import gc

import numpy as np
import pytest

import runtime
from runtime.engine import create_execution_engine
from tests.prim_samples import T, make_fn

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]


def run_freed(fn, args, patches=(), bounds_check: bool = False) -> list:
    """fn's outputs on args, built while each (object, name, value) of patches is set."""
    with pytest.MonkeyPatch.context() as m:
        for obj, name, value in patches:
            m.setattr(obj, name, value)
        exe = runtime.build_executable(fn, bounds_check=bounds_check)
    entry = exe.kernel.entry
    outs = exe.run([np.ascontiguousarray(a) for a in args])
    del exe
    gc.collect()
    assert entry not in create_execution_engine().addresses
    return outs


def sprinkle_specials(rng, x: np.ndarray):
    """Up to 6 of x's elements (in place) set to NaN, infinities or signed zeros."""
    flat = x.reshape(-1)
    at = rng.choice(flat.size, size=min(flat.size, 6), replace=False)
    flat[at] = rng.choice(SPECIAL, size=at.size)


def pool_step(dtype: str, n: int, c: int, out: int):
    """relu(conv + bias) 2x2 max pooled, laid out as the tracer's `_tiles`, and its gradient
    (the max's VJP: window hits, their count, the share of the pooled gradient)."""
    shape = (n, c, 2 * out, 2 * out)
    tiled = (n, c, out, 2, out, 2)
    pooled = (n, c, out, out)
    win = (n, c, 2, 2, out, out)

    def body(b, conv, bias, g):
        pre = b.add(conv, b.broadcast_in_dim(bias, dims=(1,), shape=shape))
        zero = b.const(0.0, dtype, shape)
        off = b.le(pre, zero)
        y = b.select(off, zero, pre)
        t = b.transpose(b.reshape(y, shape=tiled), perm=(0, 1, 3, 5, 2, 4))
        m = b.reduce_max(t, axes=(2, 3))
        hits = b.convert(b.eq(t, b.broadcast_in_dim(m, dims=(0, 1, 4, 5), shape=win)),
                         dtype=dtype)
        share = b.div(g, b.reduce_sum(hits, axes=(2, 3)))
        dt = b.mul(b.broadcast_in_dim(share, dims=(0, 1, 4, 5), shape=win), hits)
        dy = b.reshape(b.transpose(dt, perm=(0, 1, 4, 2, 5, 3)), shape=shape)
        return [m, b.select(off, zero, dy)]
    return make_fn("pool_step", [T(dtype, shape), T(dtype, (c,)), T(dtype, pooled)], body)
