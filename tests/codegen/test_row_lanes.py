"""A max or min over short rows, 16 rows at a time combined across rows in vectors
(codegen.row_lanes). Checked by a counter (used where it applies, not where it does not),
bit for bit against the same program built without it (NaN, infinities and signed zeros
included, in bounds-check mode too, which builds the row-by-row loop), against the
reference interpreter, and through the attention softmax a transformer step compiles.
"""
import gc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen import row_lanes
from ir.interpret import interpret
from runtime.engine import create_execution_engine
from tests.prim_samples.cases import T, make_fn

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]


def _outputs(fn, lanes: bool, args, bounds_check: bool = False):
    """fn's outputs from a fresh build (freed before returning), and whether row lanes were
    used."""
    with pytest.MonkeyPatch.context() as m:
        if not lanes:
            m.setattr(row_lanes, "row_axis", lambda *a, **k: None)
        before = row_lanes.STATS["emitted"]
        exe = runtime.build_executable(fn, bounds_check=bounds_check)
        used = row_lanes.STATS["emitted"] > before
    entry, outs = exe.kernel.entry, exe.run(args)
    del exe
    gc.collect()
    assert entry not in create_execution_engine().addresses
    return outs, used


def _scores_max(shape, kinds=("max",)):
    """The softmax's row reductions: of s * 0.25 + mask (mask broadcast over the batch)."""
    def body(b, s, mask):
        z = b.add(b.mul(s, b.const(0.25, "f32", shape)),
                  b.broadcast_in_dim(mask, dims=(len(shape) - 2, len(shape) - 1), shape=shape))
        return [b.emit(f"reduce_{k}", z, axes=(len(shape) - 1,)) for k in kinds]
    return make_fn("rows", [T("f32", shape), T("f32", shape[-2:])], body)


def _sample(rng, shape, special: bool):
    x = rng.standard_normal(shape).astype(np.float32)
    if special:
        flat = x.reshape(-1)
        at = rng.choice(flat.size, size=min(flat.size, 12), replace=False)
        flat[at] = rng.choice(SPECIAL, size=at.size)
    return x


def _causal(n: int) -> np.ndarray:
    return np.triu(np.full((n, n), -np.inf, np.float32), 1)


@settings(max_examples=25, deadline=None)
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
       rows=st.sampled_from([16, 32, 48]), n=st.sampled_from([16, 32, 64, 128]),
       kinds=st.sampled_from([("max",), ("min",), ("max", "min")]),
       special=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_row_lanes_give_the_bits_of_the_row_by_row_loop(batch, rows, n, kinds, special, seed):
    shape = tuple(batch) + (rows, n)
    fn = _scores_max(shape, kinds)
    rng = np.random.default_rng(seed)
    mask = _sample(rng, (rows, n), special)
    if n == rows:
        with np.errstate(invalid="ignore"):
            mask = mask + _causal(n)
    args = [_sample(rng, shape, special), mask]
    got, used = _outputs(fn, True, args)
    expected, plain_used = _outputs(fn, False, args)
    checked, checked_used = _outputs(fn, True, args, bounds_check=True)
    assert used and not plain_used and not checked_used
    for a, b, c in zip(got, expected, checked):
        assert a.tobytes() == b.tobytes() == c.tobytes()
    for a, r in zip(got, interpret(fn, *args)):
        np.testing.assert_array_equal(a, np.asarray(r))      # NaN in the same places


def test_signed_zeros_and_nans_in_every_lane_position():
    """Rows of zeros of both signs (+0 is the larger), all -inf, and a NaN at each position
    of a row of 32, so every step of the cross-row tree sees each case."""
    shape = (32, 32)
    x = np.zeros(shape, np.float32)
    x[:8] = -0.0
    x[8:16, ::2] = -0.0
    x[16:20] = -np.inf
    for r in range(20, 32):
        x[r, (r * 5) % 32] = np.nan
    fn = _scores_max(shape, ("max", "min"))
    args = [x, np.full(shape[-2:], -0.0, np.float32)]      # x + -0.0 keeps x's zero sign
    got, used = _outputs(fn, True, args)
    expected, _ = _outputs(fn, False, args)
    assert used
    for a, b in zip(got, expected):
        assert a.tobytes() == b.tobytes()
    assert np.all(np.signbit(got[0][:8])) and not np.any(np.signbit(got[0][8:16]))
    assert np.all(np.signbit(got[1][:16]))
    assert np.all(got[0][16:20] == -np.inf) and np.all(np.isnan(got[0][20:]))


@pytest.mark.parametrize("shape, why", [
    ((8, 32), "8 rows: not a whole group"),
    ((32, 24), "rows of 24: not a multiple of the lanes"),
    ((16, 256), "long rows amortise their horizontal tail"),
    ((32,), "no row axis"),
])
def test_does_not_apply(shape, why):
    def body(b, x):
        return [b.reduce_max(x, axes=(len(shape) - 1,))]
    fn = make_fn("plain", [T("f32", shape)], body)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    got, used = _outputs(fn, True, [x])
    assert not used, why
    np.testing.assert_array_equal(got[0], x.max(axis=-1))


def test_does_not_apply_to_f64_an_outer_axis_or_beside_a_sum():
    rng = np.random.default_rng(4)
    cases = [(make_fn("f64", [T("f64", (32, 32))], lambda b, x: [b.reduce_max(x, axes=(1,))]),
              lambda x: [x.max(axis=1)], np.float64),
             (make_fn("outer", [T("f32", (32, 32))], lambda b, x: [b.reduce_max(x, axes=(0,))]),
              lambda x: [x.max(axis=0)], np.float32),
             (make_fn("sum", [T("f32", (32, 32))],
                      lambda b, x: [b.reduce_max(x, axes=(1,)), b.reduce_sum(x, axes=(1,))]),
              lambda x: [x.max(axis=1), x.sum(axis=1)], np.float32)]
    for fn, reference, dtype in cases:
        x = rng.standard_normal((32, 32)).astype(dtype)
        got, used = _outputs(fn, True, [x])
        assert not used, fn.name
        for a, r in zip(got, reference(x)):
            np.testing.assert_allclose(a, r, rtol=1e-6)


def test_attention_softmax_gradient_is_bitwise_the_row_by_row_one(gradjit_env):
    """A causal attention softmax's forward and gradient (f32, compiled with its row max
    in row lanes) against the same program without them; then the float64 gradient
    (where the lanes do not apply) against central differences of the same function."""
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    gradjit_env("GRADJIT_BOUNDS_CHECK", None)     # (checked programs build the row loop)
    rng = np.random.default_rng(6)
    mask = _causal(32)

    def loss(s, w, m):
        return gj.sum(gj.softmax(s * 0.25 + m, axis=-1) * w)

    s, w = rng.standard_normal((2, 4, 32, 32)), rng.standard_normal((2, 4, 32, 32))
    results = []
    for lanes in (True, False):
        runtime.clear_cache()
        with pytest.MonkeyPatch.context() as m:
            if not lanes:
                m.setattr(row_lanes, "row_axis", lambda *a, **k: None)
            before = row_lanes.STATS["emitted"]
            g = gj.grad(loss)(*[gj.tensor(a.astype(np.float32)) for a in (s, w, mask)])
            results.append((g.numpy().tobytes(), row_lanes.STATS["emitted"] > before))
    assert results[0][1] and not results[1][1]
    assert results[0][0] == results[1][0]
    runtime.clear_cache()
    s, w, mask = s[:1, :1], w[:1, :1], mask.astype(np.float64)
    g64 = gj.grad(loss)(gj.tensor(s), gj.tensor(w), gj.tensor(mask)).numpy()
    eps = 1e-6
    for idx in list(np.ndindex(s.shape))[::37]:
        plus, minus = s.copy(), s.copy()
        plus[idx] += eps
        minus[idx] -= eps
        num = (float(loss(gj.tensor(plus), gj.tensor(w), gj.tensor(mask)))
               - float(loss(gj.tensor(minus), gj.tensor(w), gj.tensor(mask)))) / (2 * eps)
        np.testing.assert_allclose(g64[idx], num, rtol=1e-5, atol=1e-7)
