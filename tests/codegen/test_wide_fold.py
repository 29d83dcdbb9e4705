"""A float sum over several outer axes folds its in-place block sums in a deeper loop
(codegen.nest_plan `fold_level`, codegen.nest): a bias gradient's sum over (16, 32) of
[16, 32, C] adds 16 rows in place, then moves them into the f64 scratch, instead of adding
each of its 512 elements into the scratch. Checked by a counter (the deep fold was emitted,
and not where a kept axis lies between), bit for bit against the interpreter on data whose
sums are exact in any order (every element read once, part blocks folded), within the fold
mode's error bound on random data, bitwise for one and two threads, and with NaN and
infinities.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import runtime
from codegen import nest
from ir.interpret import interpret
from runtime import threads
from tests.codegen.test_reduction_accuracy import exact_sum, special_columns, sum_fn

NP = {"f32": np.float32, "f64": np.float64}

# (shape, axes, folded deep): part blocks at the fold level (20, 3, 17 rows), three reduced
# outer axes, a kept axis of extent 1 between, a kept axis of extent > 1 between (no deep fold)
CASES = [((16, 32, 192), (0, 1), True), ((3, 20, 7), (0, 1), True),
         ((4, 3, 8, 5), (0, 1, 2), True), ((5, 17, 33, 3), (0, 1), True),
         ((2, 1, 40, 9), (0, 2), True), ((20, 50, 6), (0, 1), True),
         ((16, 5, 32, 8), (0, 2), False), ((40, 3), (0,), False)]


def _compile(fn, bounds_check: bool = False):
    """A fresh executable of fn (no cache: the emitter runs), called on arrays, and whether
    a deep fold was emitted for it."""
    before = nest.STATS["deep_folds"]
    exe = runtime.build_executable(fn, bounds_check=bounds_check)
    return (lambda *xs: exe.run(list(xs))), exe, nest.STATS["deep_folds"] > before


def _bound(x: np.ndarray, axes: tuple, dt: str) -> np.ndarray:
    """The fold mode's error: at most 16 elements summed in place (15 roundings of the
    block's magnitude) before the exact-enough scratch, then one final rounding."""
    eps = np.finfo(NP[dt]).eps
    return 16 * eps * exact_sum(np.abs(x), axes) + eps * np.abs(exact_sum(x, axes))


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("shape, axes, deep", CASES, ids=lambda c: str(c).replace(" ", ""))
def test_exact_data_equals_the_interpreter(dt, shape, axes, deep):
    fn = sum_fn(dt, shape, axes)
    x = np.random.default_rng(3).integers(-8, 9, shape).astype(NP[dt])
    want = interpret(fn, x)[0]
    for bounds_check in (False, True):
        run, _, folded = _compile(fn, bounds_check=bounds_check)
        np.testing.assert_array_equal(run(x)[0], want)
        assert folded == deep


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=2, max_size=3), st.integers(1, 20),
       st.sampled_from(["f32", "f64"]), st.integers(0, 2 ** 31))
def test_random_shapes_within_the_fold_bound(outer, kept, dt, seed):
    shape, axes = tuple(outer) + (kept,), tuple(range(len(outer)))
    x = np.random.default_rng(seed).standard_normal(shape).astype(NP[dt])
    got = runtime.compile(sum_fn(dt, shape, axes))(x)[0]
    err = np.abs(got.astype(np.float64) - exact_sum(x, axes).astype(np.float64))
    assert np.all(err <= _bound(x, axes, dt)), (shape, err.max())


def test_two_threads_give_the_same_bits():
    shape, axes = (64, 64, 512), (0, 1)
    run, exe, folded = _compile(sum_fn("f32", shape, axes, square=True))
    assert folded and 'call void @"gj.parallel_for"' in exe.llvm_ir
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    runs = []
    try:
        for n in (1, 2, 1, 2):
            threads.set_num_threads(n)
            runs.append(run(x)[0].tobytes())
    finally:
        threads.set_num_threads(None)
    assert len(set(runs)) == 1
    got = np.frombuffer(runs[0], np.float32)
    assert np.all(np.abs(got - exact_sum(x * x, axes)) <= _bound(x * x, axes, "f32"))


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("split", [(3, 17), (20, 50), (2, 40)])   # part, whole blocks
def test_infinities_and_nans_propagate_like_numpy(dt, split):
    rows = split[0] * split[1]
    x = special_columns(dt, rows)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.sum(axis=0)
    run, _, folded = _compile(sum_fn(dt, split + (6,), (0, 1)))
    assert folded
    np.testing.assert_array_equal(run(x.reshape(split + (6,)))[0], want)
