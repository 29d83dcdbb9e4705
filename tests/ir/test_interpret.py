"""The reference interpreter states each primitive's documented meaning; these pin the cases
where NumPy alone would say something else (or fail): empty reductions, integer division,
saturating conversion, negative integer powers, clamped indices, reverse scans."""
import numpy as np
import pytest

from ir import Builder, Function, TensorType, Value
from ir.interpret import eval_op, impl_rules, interpret

I32_MIN, I32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max


def run(build, *args, dtypes=None):
    """Interprets build(b, *params) on args (params typed like the args, or by dtypes)."""
    args = [np.asarray(a) for a in args]
    names = dtypes or [{"float64": "f64", "float32": "f32", "int32": "i32", "int64": "i64",
                        "bool": "bool"}[str(a.dtype)] for a in args]
    params = [Value(TensorType(d, a.shape)) for d, a in zip(names, args)]
    b = Builder()
    out = build(b, *params)
    results = list(out) if isinstance(out, (list, tuple)) else [out]
    got = interpret(Function("f", params, b.ops, results), *args)
    return got if len(got) > 1 else got[0]


def test_empty_integer_reductions_give_the_dtype_bounds():
    x = np.zeros((0, 3), np.int32)
    assert run(lambda b, x: b.reduce_max(x, axes=(0,)), x).tolist() == [I32_MIN] * 3
    assert run(lambda b, x: b.reduce_min(x, axes=(0,)), x).tolist() == [I32_MAX] * 3
    assert run(lambda b, x: b.reduce_sum(x, axes=(0,)), x).tolist() == [0] * 3
    f = np.zeros((2, 0))
    assert run(lambda b, x: b.reduce_max(x, axes=(1,)), f).tolist() == [-np.inf] * 2


def test_integer_division_truncates_and_defines_the_undefined_cases():
    x = np.array([7, -7, 7, -7, 5, I32_MIN], np.int32)
    y = np.array([2, 2, -2, -2, 0, -1], np.int32)
    assert run(lambda b, x, y: b.div(x, y), x, y).tolist() == [3, -3, -3, 3, 0, I32_MIN]


def test_float_to_int_conversion_saturates_and_nan_gives_zero():
    x = np.array([np.nan, np.inf, -np.inf, 1e20, -1e20, -2.7, 2.7, -0.0])
    assert run(lambda b, x: b.convert(x, dtype="i32"), x).tolist() == \
        [0, I32_MAX, I32_MIN, I32_MAX, I32_MIN, -2, 2, 0]
    big = np.iinfo(np.int64)
    assert run(lambda b, x: b.convert(x, dtype="i64"), x[:5]).tolist() == \
        [0, big.max, big.min, big.max, big.min]
    assert run(lambda b, x: b.convert(x, dtype="bool"), x[:3]).tolist() == [True] * 3


def test_negative_integer_powers_of_integers():
    x = np.array([-2, -1, 0, 1, 2, 3], np.int32)
    assert run(lambda b, x: b.integer_pow(x, n=-1), x).tolist() == [0, -1, I32_MIN, 1, 0, 0]
    assert run(lambda b, x: b.integer_pow(x, n=-2), x).tolist() == [0, 1, I32_MIN, 1, 0, 0]
    assert run(lambda b, x: b.integer_pow(x, n=3), x).tolist() == [-8, -1, 0, 1, 8, 27]


def test_float_powers_are_ieee():
    x = np.array([0.0, -0.0, 2.0, np.inf])
    got = run(lambda b, x: b.integer_pow(x, n=-1), x)
    assert got.tolist() == [np.inf, -np.inf, 0.5, 0.0]


def test_logistic_does_not_overflow():
    x = np.array([-1000.0, 0.0, 1000.0], np.float32)
    assert run(lambda b, x: b.logistic(x), x).tolist() == [0.0, 0.5, 1.0]


def test_argmax_and_argmin_pick_the_first_of_ties():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 0.0]])
    assert run(lambda b, x: b.argmax(x, axis=1), x).tolist() == [1, 0]
    assert run(lambda b, x: b.argmin(x, axis=1), x).tolist() == [0, 1]


def test_slice_pad_and_broadcast_in_dim():
    x = np.arange(7.0)
    assert run(lambda b, x: b.slice(x, start=(1,), limit=(7,), stride=(3,)), x).tolist() == \
        [1.0, 4.0]
    got = run(lambda b, x: b.pad(x, lo=(1,), hi=(2,), interior=(1,)), np.array([5.0, 6.0]))
    assert got.tolist() == [0.0, 5.0, 0.0, 6.0, 0.0, 0.0]
    empty = run(lambda b, x: b.pad(x, lo=(1, 0), hi=(0, 0), interior=(3, 1)),
                np.zeros((0, 2)))
    assert empty.tolist() == [[0.0, 0.0, 0.0]]
    row = np.array([[1.0, 2.0]])
    got = run(lambda b, x: b.broadcast_in_dim(x, shape=(3, 2, 2), dims=(1, 2)), row)
    assert got.shape == (3, 2, 2) and (got == [[1.0, 2.0], [1.0, 2.0]]).all()


def test_dot_general_orders_batch_then_lhs_free_then_rhs_free():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5, 2))
    got = run(lambda b, x, y: b.dot_general(x, y, contract=((2,), (0,)), batch=((0,), (2,))),
              x, y)
    np.testing.assert_allclose(got, np.einsum("bik,kjb->bij", x, y), rtol=1e-12)


def test_gather_and_scatter_add_clamp_indices_and_accumulate_duplicates():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    idx = np.array([2, -5, 9, 0])
    assert run(lambda b, x, i: b.gather(x, i, axis=0), x, idx).tolist() == \
        [[5.0, 6.0], [1.0, 2.0], [5.0, 6.0], [1.0, 2.0]]
    upd = np.ones((4, 2))
    got = run(lambda b, x, i, u: b.scatter_add(x, i, u, axis=0), x, idx, upd)
    assert got.tolist() == [[3.0, 4.0], [3.0, 4.0], [7.0, 8.0]]


def test_iota_and_constants():
    got = run(lambda b: b.iota(dtype="i32", shape=(2, 3), dim=1))
    assert got.tolist() == [[0, 1, 2], [0, 1, 2]] and got.dtype == np.int32
    splat, table = run(lambda b: (b.const(-0.0, "f32", (2,)), b.const([[1, 2]], "f64", (1, 2))))
    assert np.signbit(splat).all() and table.tolist() == [[1.0, 2.0]]


def _step(b, c, x):
    total = b.add(c, x)
    return total, b.mul(total, b.const(10.0, "f64"))


def test_reverse_scan_walks_backwards_and_stacks_at_the_step_index():
    c, xs = Value(TensorType("f64", ())), Value(TensorType("f64", (3,)))
    body_b = Builder()
    pc, px = Value(TensorType("f64", ())), Value(TensorType("f64", ()))
    body = Function("step", [pc, px], body_b.ops, list(_step(body_b, pc, px)))
    for reverse, want in ((False, [10.0, 30.0, 60.0]), (True, [60.0, 50.0, 30.0])):
        b = Builder()
        final, ys = b.emit("scan", c, xs, num_carry=1, length=3, reverse=reverse,
                           regions=(body,))
        got = interpret(Function("f", [c, xs], b.ops, [final, ys]), 0.0, [1.0, 2.0, 3.0])
        assert got[0] == 6.0 and got[1].tolist() == want


def test_a_rule_giving_the_wrong_shape_is_an_error_not_reshaped(monkeypatch):
    """The interpreter is the oracle: a rule's result must already have the op's shape."""
    x = Value(TensorType("f64", (2, 3)))
    b = Builder()
    b.exp(x)
    monkeypatch.setitem(impl_rules, "exp", lambda x: np.exp(x).T)
    with pytest.raises(AssertionError, match="'exp' gave shape \\(3, 2\\) for f64\\[2,3\\]"):
        eval_op(b.ops[0], [np.zeros((2, 3))])
