"""Edge-case semantics of compiled code: integer division, NaN, inf, conversions, empty arrays."""
import numpy as np
import pytest

import runtime
from ir.interpret import interpret
from tests.prim_samples import T, make_fn
from tests.codegen.test_codegen_primitives import TRANSCENDENTAL, assert_same

SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 1e30, -1e30, 88.0, -104.0, 0.5]


def compiled(fn, *args):
    out = runtime.compile(fn)(*args)
    assert_same(out, interpret(fn, *args))
    return out


@pytest.mark.parametrize("dt", ["i32", "i64"])
def test_integer_division_truncates_and_never_traps(dt):
    info = np.iinfo(T(dt, ()).np_dtype)
    x = np.array([7, -7, 7, -7, 0, info.min, info.min, 5, 3], T(dt, ()).np_dtype)
    y = np.array([2, 2, -2, -2, 0, -1, 1, 0, 7], x.dtype)
    fn = make_fn("div", [T(dt, (9,))] * 2, lambda b, p, q: [b.div(p, q)])
    (q,) = compiled(fn, x, y)
    assert q.tolist() == [3, -3, -3, 3, 0, info.min, info.min, 0, 0]


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_nan_propagates_through_max_min_and_reductions(dt):
    x = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, -1.0]], T(dt, ()).np_dtype)
    y = np.full((2, 3), 2.0, x.dtype)

    def body(b, p, q):
        return [b.max(p, q), b.min(q, p), b.reduce_max(p, axes=(1,)), b.reduce_min(p, axes=(0,)),
                b.argmax(p, axis=1), b.argmin(p, axis=0), b.sign(p)]
    out = compiled(make_fn("nan", [T(dt, (2, 3))] * 2, body), x, y)
    assert np.isnan(out[0][0, 1]) and np.isnan(out[1][0, 1])
    assert np.isnan(out[2][0]) and out[2][1] == 5.0
    assert out[4].tolist() == [1, 1] and out[5].tolist() == [0, 0, 1]


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_conversions_truncate_and_nan_is_truthy(dt):
    x = np.array([-2.7, 2.7, -0.5, 0.0, np.nan], T(dt, ()).np_dtype)

    def body(b, p):
        return [b.convert(p, dtype="bool"), b.convert(b.slice(p, start=(0,), limit=(4,),
                                                              stride=(1,)), dtype="i32")]
    flags, ints = compiled(make_fn("cvt", [T(dt, (5,))], body), x)
    assert flags.tolist() == [True, True, True, False, True]
    assert ints.tolist() == [-2, 2, 0, 0]


@pytest.mark.parametrize("with_vmath", [True, False])
@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_transcendentals_on_special_values(dt, with_vmath):
    n = len(SPECIALS)
    fn = make_fn("specials", [T(dt, (n,))], lambda b, x: [b.emit(p, x) for p in TRANSCENDENTAL])
    x = np.array(SPECIALS, T(dt, ()).np_dtype)
    got, want = runtime.build_executable(fn, vmath=with_vmath)(x), interpret(fn, x)
    for name, g, w in zip(TRANSCENDENTAL, got, want):
        finite = np.abs(x) < (1e4 if name in ("sin", "cos", "tan") else np.inf)
        np.testing.assert_allclose(g[finite], w[finite], rtol=2e-6 if dt == "f32" else 1e-13,
                                   atol=1e-37 if dt == "f32" else 1e-300, err_msg=name)


def test_logistic_does_not_overflow_at_large_magnitudes():
    fn = make_fn("sig", [T("f32", (4,))], lambda b, x: [b.logistic(x)])
    (y,) = compiled(fn, np.array([-1000, -100, 100, 1000], np.float32))
    assert np.all(np.isfinite(y)) and y[2] == 1.0 and y[0] == 0.0


def test_empty_arrays_everywhere():
    def body(b, x, m, k):
        return [b.exp(x), b.reduce_sum(x, axes=(0,)), b.reduce_max(x, axes=(1,)),
                b.dot_general(m, k, contract=((1,), (0,)), batch=((), ())),
                b.concatenate(x, x, axis=0)]
    fn = make_fn("empty", [T("f64", (0, 3)), T("f64", (2, 0)), T("f64", (0, 3))], body)
    out = compiled(fn, np.zeros((0, 3)), np.zeros((2, 0)), np.zeros((0, 3)))
    assert out[1].tolist() == [0, 0, 0] and out[3].tolist() == [[0, 0, 0], [0, 0, 0]]


def test_gather_and_scatter_clamp_out_of_range_indices():
    def body(b, x, i, u):
        return [b.gather(x, i, axis=0), b.scatter_add(x, i, u, axis=0)]
    fn = make_fn("idx", [T("f32", (4,)), T("i64", (5,)), T("f32", (5,))], body)
    x = np.arange(4, dtype=np.float32)
    g, s = compiled(fn, x, np.array([-9, 0, 3, 4, 99]), np.ones(5, np.float32))
    assert g.tolist() == [0, 0, 3, 3, 3]
    assert s.tolist() == [2, 1, 2, 6]


def test_bool_buffers_hold_one_byte_per_element():
    def body(b, p, q):
        return [b.logical_and(p, q), b.logical_or(p, b.logical_not(q)), b.select(p, q, p)]
    fn = make_fn("logic", [T("bool", (2, 3))] * 2, body)
    rng = np.random.default_rng(0)
    p, q = rng.random((2, 3)) < 0.5, rng.random((2, 3)) < 0.5
    for out in compiled(fn, p, q):
        assert out.dtype == np.bool_ and set(out.view(np.uint8).ravel()) <= {0, 1}


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_constants_are_exact_including_special_values(dt):
    table = ((float("-inf"), 0.1), (float("nan"), 1e-45))

    def body(b):
        return [b.const(float("nan"), dt, (2,)), b.const(float("inf"), dt), b.const(0.1, dt),
                b.emit("constant", value=table, dtype=dt, shape=(2, 2))]
    fn = make_fn("consts", [], body)
    for got, want in zip(runtime.compile(fn)(), interpret(fn)):
        np.testing.assert_array_equal(got, want)
