"""A nest whose body reshapes (..., n/f, f) into its innermost axis n runs that loop unrolled
by f (codegen/inner_unroll.py). Checked: which nests take it (a counter) and which do not,
the bits against the same program emitted without it (store roots, a strip-mined row sum,
a sum and a max in memory; NaN, infinities and signed zeros, a NaN's sign and payload
aside; hypothesis over shapes), the
bounds-check mode, the reference interpreter, and a float64 gradient through it against
finite differences.
"""
import gc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen import inner_unroll
from codegen.fusion import LoopNest, plan_function
from ir.interpret import interpret
from runtime.engine import create_execution_engine
from tests.prim_samples import T, make_fn

NP = {"f32": np.float32, "f64": np.float64}
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]


def _merge_fn(dtype: str, lead: int, m: int, f: int, transposed: bool):
    """z = reshape(x: (lead, m, f) or its (lead, f, m) transpose, to (lead, m * f)) * y + b,
    returned with its row sum (lanes), its column sum and max (in memory)."""
    n = m * f

    def body(b, x, y, bias):
        t = b.transpose(x, perm=(0, 2, 1)) if transposed else x
        z = b.reshape(b.sin(t), shape=(lead, n))
        z = b.add(b.mul(z, y), b.broadcast_in_dim(bias, dims=(0,), shape=(lead, n)))
        return [z, b.reduce_sum(z, axes=(1,)), b.reduce_sum(z, axes=(0,)),
                b.reduce_max(z, axes=(0,))]
    xshape = (lead, f, m) if transposed else (lead, m, f)
    return make_fn("merge", [T(dtype, xshape), T(dtype, (lead, n)), T(dtype, (lead,))], body)


def _run(fn, args, unroll: bool, bounds_check: bool = False):
    """fn's outputs built with or without the unrolling, and whether it was used. The
    executable is freed before returning, so the next build compiles its own code (a live
    symbol's machine code is reused: runtime.engine's compile)."""
    before = inner_unroll.STATS["unrolled"]
    with pytest.MonkeyPatch.context() as m:
        if not unroll:
            m.setattr(inner_unroll, "factor", lambda *a: 1)
        exe = runtime.build_executable(fn, bounds_check=bounds_check)
    used = inner_unroll.STATS["unrolled"] > before
    entry = exe.kernel.entry
    outs = exe.run(args)
    del exe
    gc.collect()
    assert entry not in create_execution_engine().addresses
    return outs, used


def _sample(rng, dtype, shape, special):
    x = rng.standard_normal(shape).astype(NP[dtype])
    if special:
        flat = x.reshape(-1)
        at = rng.choice(flat.size, size=min(flat.size, 6), replace=False)
        flat[at] = rng.choice(SPECIAL, size=at.size)
    return x


def _assert_same_bits(a, b):
    """Bitwise equal, a NaN's sign and payload aside: sin(inf) gives the default NaN of
    whichever code computes it (vector or scalar), which the loop's shape decides."""
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    assert a[~nan].tobytes() == b[~nan].tobytes()


@pytest.mark.parametrize("f, taken", [(2, True), (4, True), (8, False), (16, False)])
def test_which_merges_are_unrolled(f, taken):
    fn = _merge_fn("f32", 3, 8, f, transposed=True)
    rng = np.random.default_rng(f)
    args = [_sample(rng, "f32", p.type.shape, False) for p in fn.params]
    _, used = _run(fn, args, True)
    assert used == taken


def test_no_merge_and_a_concatenate_are_not_unrolled():
    fn = make_fn("plain", [T("f32", (4, 32))], lambda b, x: [b.exp(x), b.reduce_sum(x, axes=(1,))])
    x = np.ones((4, 32), np.float32)
    assert not _run(fn, [x], True)[1]

    def cat(b, x, y):
        merged = b.reshape(y, shape=(4, 32))            # (16, 2) into 32: would be unrolled
        return [b.add(b.concatenate(b.exp(x), x, axis=1), merged)]
    fn = make_fn("cat", [T("f32", (4, 16)), T("f32", (4, 16, 2))], cat)
    assert any(isinstance(s, LoopNest) for s in plan_function(fn).steps)
    rng = np.random.default_rng(2)
    args = [rng.standard_normal((4, 16)).astype(np.float32),
            rng.standard_normal((4, 16, 2)).astype(np.float32)]
    got, used = _run(fn, args, True)
    assert not used             # the loop is cut at the pieces' boundaries instead
    want = np.concatenate([np.exp(args[0]), args[0]], 1) + args[1].reshape(4, 32)
    np.testing.assert_allclose(got[0], want, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from(list(NP)), lead=st.integers(1, 5), m=st.integers(2, 40),
       f=st.sampled_from([2, 4]), transposed=st.booleans(), special=st.booleans(),
       seed=st.integers(0, 2**16))
def test_bits_equal_the_single_loop(dtype, lead, m, f, transposed, special, seed):
    fn = _merge_fn(dtype, lead, m, f, transposed)
    rng = np.random.default_rng(seed)
    args = [_sample(rng, dtype, p.type.shape, special) for p in fn.params]
    fast, used = _run(fn, args, True)
    plain, plain_used = _run(fn, args, False)
    checked, _ = _run(fn, args, True, bounds_check=True)
    assert used and not plain_used
    for a, b, c in zip(fast, plain, checked):
        _assert_same_bits(a, b)
        _assert_same_bits(a, c)
    ref = [np.asarray(r) for r in interpret(fn, *args)]
    tol = 1e-5 if dtype == "f32" else 1e-12
    for a, r in zip(fast, ref):
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol)


def test_float64_gradient_through_an_unrolled_nest(gradjit_env):
    """d/dx of sum(v * sin(transpose(reshape(x, (3, 6, 2))))): the gradient, over x's rows
    of 12, reads (6, 2) merged into them; against central differences."""
    gradjit_env("GRADJIT_DISK_CACHE", "0")      # compiled here, so the counter sees it
    runtime.clear_cache()
    rng = np.random.default_rng(5)
    x, v = rng.standard_normal((3, 12)), rng.standard_normal((3, 2, 6))

    def loss(x):
        t = gj.transpose(gj.reshape(x, (3, 6, 2)), (0, 2, 1))
        return gj.sum(gj.tensor(v) * gj.sin(t))

    def reference(x):
        return (v * np.sin(x.reshape(3, 6, 2).transpose(0, 2, 1))).sum()
    before = inner_unroll.STATS["unrolled"]
    g = gj.grad(loss)(gj.tensor(x)).numpy()
    assert inner_unroll.STATS["unrolled"] > before
    num, eps = np.zeros_like(x), 1e-6
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        num[idx] = (reference(plus) - reference(minus)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
