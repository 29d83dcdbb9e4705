"""A max or min beside a sum over a nest's innermost axis (codegen.extremum_lanes): lanes of
its own instead of a horizontal max per chunk. Checked by a counter (the lanes were used, and
not where they do not apply), bitwise against the same program built without them (NaN,
infinities and signed zeros included), against the reference interpreter, and through a
float64 gradient (log-sum-exp, whose max is the stabiliser) against finite differences.
"""
import gc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen import extremum_lanes
from ir.interpret import interpret
from runtime.engine import create_execution_engine
from tests.gradcheck import check_grads, f64, make_fn as grad_fn
from tests.prim_samples import T, make_fn

NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]


def _build(fn, lanes: bool, bounds_check: bool = False):
    """A fresh executable of fn, with the extremum lanes on or off; and whether they were used."""
    with pytest.MonkeyPatch.context() as m:
        if not lanes:
            m.setattr(extremum_lanes, "applies", lambda *a, **k: False)
        before = extremum_lanes.STATS["emitted"]
        exe = runtime.build_executable(fn, bounds_check=bounds_check)
        return exe, extremum_lanes.STATS["emitted"] > before


def _outputs(fn, lanes: bool, args, bounds_check: bool = False):
    """fn's outputs from a fresh build (freed before returning), and whether lanes were used."""
    exe, used = _build(fn, lanes, bounds_check)
    entry, outs = exe.kernel.entry, exe.run(args)
    del exe
    gc.collect()
    assert entry not in create_execution_engine().addresses
    return outs, used


def _max_min_and_sum(rows, n, dtype):
    """max and min of x + b over each row (b broadcast along the rows) beside a float sum of
    y over the same rows: the fused nest of a cross-entropy's logits and gradient."""
    def body(b, x, bias, y):
        z = b.add(x, b.broadcast_in_dim(bias, dims=(1,), shape=(rows, n)))
        return [b.reduce_max(z, axes=(1,)), b.reduce_min(z, axes=(1,)),
                b.reduce_sum(y, axes=(1,))]
    return make_fn("mms", [T(dtype, (rows, n)), T(dtype, (n,)), T("f32", (rows, n))], body)


def _sample(rng, dtype, shape, special: bool):
    if dtype.startswith("i"):
        return rng.integers(-1000, 1000, shape).astype(NP[dtype])
    x = rng.standard_normal(shape).astype(NP[dtype])
    if special:
        flat = x.reshape(-1)
        at = rng.choice(flat.size, size=min(flat.size, 6), replace=False)
        flat[at] = rng.choice(SPECIAL, size=at.size)
    return x


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 4), n=st.integers(16, 300), dtype=st.sampled_from(list(NP)),
       special=st.booleans(), seed=st.integers(0, 2**16))
def test_lanes_give_the_bits_of_the_scalar_accumulator(rows, n, dtype, special, seed):
    fn = _max_min_and_sum(rows, n, dtype)
    rng = np.random.default_rng(seed)
    args = [_sample(rng, dtype, (rows, n), special), _sample(rng, dtype, (n,), special),
            rng.standard_normal((rows, n)).astype(np.float32)]
    # one at a time: a build of a symbol still live reuses its machine code (engine.compile)
    checked, used = _outputs(fn, True, args, bounds_check=True)
    got, _ = _outputs(fn, True, args)
    expected, plain_used = _outputs(fn, False, args)
    assert used and not plain_used
    for a, b, c in zip(got, expected, checked):
        assert a.tobytes() == b.tobytes() == c.tobytes()
    ref = interpret(fn, *args)
    for a, r in zip(got[:2], ref[:2]):
        np.testing.assert_array_equal(a, np.asarray(r))      # NaN in the same places
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [8, 15])
def test_rows_shorter_than_the_lanes_keep_one_accumulator(n):
    """No lanes for the sum (rows of fewer than LANES elements), so none for the max."""
    fn = _max_min_and_sum(3, n, "f32")
    rng = np.random.default_rng(n)
    args = [rng.standard_normal(p.type.shape).astype(np.float32) for p in fn.params]
    exe, used = _build(fn, True)
    assert not used
    for a, r in zip(exe.run(args), interpret(fn, *args)):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


def test_a_max_over_an_outer_axis_is_not_given_lanes():
    """max over axis 0 beside a sum over axis 1: the max accumulates in its output."""
    def body(b, x):
        return [b.reduce_max(x, axes=(0,)), b.reduce_sum(x, axes=(1,))]
    fn = make_fn("outer", [T("f32", (5, 40))], body)
    x = np.random.default_rng(1).standard_normal((5, 40)).astype(np.float32)
    exe, used = _build(fn, True)
    assert not used
    got = exe.run([x])
    np.testing.assert_array_equal(got[0], x.max(axis=0))
    np.testing.assert_allclose(got[1], x.sum(axis=1), rtol=1e-5)


def test_float64_gradient_through_the_lanes_matches_finite_differences(gradjit_env):
    """A log-sum-exp (its max the stabiliser, differentiated too) weighted by a row sum:
    compiled, its max and a row sum share a nest. The float64 gradient against central
    differences, and the reference interpreter's derivatives of the same rules."""
    def loss(x, y):
        m = gj.max(x, axis=1, keepdims=True)
        lse = gj.log(gj.sum(gj.exp(x - m), axis=1)) + gj.max(x, axis=1)
        return gj.sum(lse * gj.sum(y * x, axis=1))

    def reference(x, y):
        m = x.max(axis=1, keepdims=True)
        lse = np.log(np.exp(x - m).sum(axis=1)) + m[:, 0]
        return (lse * (y * x).sum(axis=1)).sum()
    gradjit_env("GRADJIT_DISK_CACHE", "0")      # compiled here, so the counter sees it
    runtime.clear_cache()
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((3, 40)), rng.standard_normal((3, 40))
    before = extremum_lanes.STATS["emitted"]
    g = gj.grad(loss)(gj.tensor(x), gj.tensor(y)).numpy()
    assert extremum_lanes.STATS["emitted"] > before
    num, eps = np.zeros_like(x), 1e-6
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        num[idx] = (reference(plus, y) - reference(minus, y)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-7)
    fn = grad_fn(lambda b, x: b.reduce_sum(_lse(b, x), axes=(0,)), f64[3, 40])
    check_grads(fn, [x], order=1)


def _lse(b, x):
    m = b.stop_gradient(b.reduce_max(x, axes=(1,)))
    shifted = b.sub(x, b.broadcast_in_dim(m, dims=(0,), shape=x.type.shape))
    return b.add(b.log(b.reduce_sum(b.exp(shifted), axes=(1,))), m)


def test_a_reduction_split_across_threads_combines_the_lanes_of_each_task():
    """A max and min over a long 1-D array beside its sum: the nest is cut into tasks (from
    the shape alone), each with its own lanes, the tasks' partials combined after the join."""
    n = (1 << 20) + 37
    fn = make_fn("split", [T("f32", (n,))], lambda b, x: [
        b.reduce_max(x, axes=(0,)), b.reduce_min(x, axes=(0,)), b.reduce_sum(x, axes=(0,))])
    x = np.random.default_rng(5).standard_normal(n).astype(np.float32)
    x[n // 3] = 7.5                         # the max inside a task other than the first
    fast, used = _build(fn, True)
    plain, _ = _build(fn, False)
    assert used and "gj.parallel_for" in fast.llvm_ir
    got, expected = fast.run([x]), plain.run([x])
    assert all(a.tobytes() == b.tobytes() for a, b in zip(got, expected))
    assert got[0] == np.float32(7.5) and got[1] == x.min()
