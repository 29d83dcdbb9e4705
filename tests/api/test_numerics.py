"""Numerics: dtypes, promotion, 0-d / size-1 / empty shapes, broadcasting, axes and accuracy.

Expected values come from NumPy; dtype rules are PyTorch's and JAX's (weak Python scalars,
f32 + f64 -> f64, integer arithmetic promoting to the default float).
"""
from __future__ import annotations

import numpy as np
import pytest

import gradjit as gj

RNG = np.random.default_rng(5)
F32, F64 = np.ones(3, np.float32), np.ones(3)
I64, I32 = np.arange(3), np.arange(3, dtype=np.int32)


def values(t) -> np.ndarray:
    return np.asarray(t)


@pytest.mark.parametrize("fn, args, dtype", [
    (lambda x: x * 2.0, (F32,), gj.float32),                 # weak Python float
    (lambda x: x * 2, (F32,), gj.float32),
    (lambda x: gj.where(x > 0, x, 1e-3), (F32,), gj.float32),
    (lambda x: gj.maximum(x, 0.5), (F32,), gj.float32),
    (lambda x: x ** 0.5, (F32,), gj.float32),
    (lambda x: 2 ** x, (F32,), gj.float32),
    (lambda x, y: x + y, (F32, F64), gj.float64),
    (lambda x, y: x @ y, (F32, F64), gj.float64),
    (lambda x, y: gj.cat([x, y]), (F32, F64), gj.float64),
    (lambda x, y: gj.einsum("i,i->", x, y), (F32, F64), gj.float64),
    (lambda x: x * 2.5, (I64,), gj.float32),
    (lambda x: x / 2, (I64,), gj.float32),
    (lambda x: gj.exp(x), (I64,), gj.float32),
    (lambda x, y: x + y, (I32, I64), gj.int64),
    (lambda x: x * 2, (I32,), gj.int32),
    (lambda x: x.sum(), (np.array([True, True]),), gj.int64),
    (lambda m, x: m * x, (np.array([True, False, True]), F32), gj.float32),
])
def test_promotion(fn, args, dtype):
    out = gj.jit(fn)(*args)
    assert out.dtype == dtype
    np.testing.assert_allclose(values(out).astype(np.float64),
                               np.asarray(fn(*(gj.tensor(a) for a in args))).astype(float))


def test_gradients_keep_each_inputs_dtype():
    g32, g64 = gj.grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(F32, F64)
    assert g32.dtype == gj.float32 and g64.dtype == gj.float64
    assert gj.hessian(lambda x: (x ** 3).sum())(F32).dtype == gj.float32
    assert gj.grad(lambda x: x.double().sum())(F32).dtype == gj.float32
    assert gj.grad(lambda x: x ** 2)(3.0).dtype == gj.float32          # weak float -> f32
    assert gj.grad(lambda x: x ** 2)(np.float64(3.0)).dtype == gj.float64


@pytest.mark.parametrize("arg", [np.arange(3), np.array([True]), 3])
def test_integer_inputs_to_grad_are_a_clear_error(arg):
    with pytest.raises(TypeError) as info:
        gj.grad(lambda x: (x * 1.5).sum())(arg)                     # MARK
    msg = str(info.value)
    assert "cannot be differentiated" in msg and "test_numerics.py:" in msg


# ---- empty, 0-d and size-1 shapes ----------------------------------------------------------

OPS = {
    "exp": (lambda x: gj.exp(x), lambda x: np.exp(x)),
    "sum": (lambda x: x.sum(), lambda x: x.sum()),
    "sum0": (lambda x: x.sum(0), lambda x: x.sum(0)),
    "sum-1 keepdim": (lambda x: x.sum(-1, keepdim=True), lambda x: x.sum(-1, keepdims=True)),
    "mean1": (lambda x: x.mean(-1), lambda x: x.mean(-1)),
    "prod": (lambda x: x.prod(), lambda x: x.prod()),
    "softmax": (lambda x: gj.softmax(x, -1),
                lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    "logsumexp": (lambda x: gj.logsumexp(x, -1), lambda x: np.log(np.exp(x).sum(-1))),
    "matmul xT": (lambda x: x @ x.T, lambda x: x @ x.T),
    "matmul Tx": (lambda x: x.T @ x, lambda x: x.T @ x),
    "einsum": (lambda x: gj.einsum("ij,kj->ik", x, x), lambda x: x @ x.T),
    "cat": (lambda x: gj.cat([x, x * 2]), lambda x: np.concatenate([x, x * 2])),
    "stack": (lambda x: gj.stack([x, x], -1), lambda x: np.stack([x, x], -1)),
    "where": (lambda x: gj.where(x > 0.5, x, 1.0), lambda x: np.where(x > 0.5, x, 1.0)),
    "index": (lambda x: x[:, 1:], lambda x: x[:, 1:]),
    "reshape": (lambda x: x.reshape(-1), lambda x: x.reshape(-1)),
}
SHAPES = [(0, 3), (3, 0), (1, 1), (1, 3)]


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(OPS))
def test_op_and_its_gradient_on_edge_shapes(name, shape):
    fn, ref = OPS[name]
    x = RNG.random(shape)
    with np.errstate(all="ignore"):
        want = ref(x)             # NumPy's mean of an empty row is nan, as gradjit's
    np.testing.assert_allclose(values(gj.jit(fn)(x)), want, rtol=1e-12)
    np.testing.assert_allclose(values(fn(gj.tensor(x))), want, rtol=1e-12)
    g = gj.grad(lambda x: fn(x).sum())(x)
    assert g.shape == shape
    t = gj.tensor(x, requires_grad=True)
    fn(t).sum().backward()
    np.testing.assert_allclose(values(t.grad), values(g), rtol=1e-12)
    if x.size == 0:
        return
    eps = 1e-6
    d = RNG.standard_normal(shape)
    fd = (ref(x + eps * d).sum() - ref(x - eps * d).sum()) / (2 * eps)
    np.testing.assert_allclose((values(g) * d).sum(), fd, rtol=1e-6, atol=1e-9)


def test_zero_d_inputs_through_ops_and_grad():
    x = np.float64(0.3)
    assert gj.grad(lambda x: gj.tanh(x) * x)(x).item() == pytest.approx(
        np.tanh(x) + x * (1 - np.tanh(x) ** 2), rel=1e-12)
    assert gj.jit(lambda x: x.sum(), )(x).shape == ()
    assert gj.jit(lambda x: x.reshape(1, 1))(x).shape == (1, 1)
    assert gj.jit(lambda x: x[None])(x).shape == (1,)
    assert gj.jit(lambda x: gj.stack([x, x]))(x).shape == (2,)
    assert gj.grad(lambda x: (x * gj.ones(3, dtype=gj.float64)).sum())(x).item() == 3.0


def test_any_all_and_extrema_of_empty_tensors():
    assert not gj.tensor([]).any().item()          # was True: reduce_max's identity was cast
    assert gj.tensor([]).all().item()
    assert values(gj.zeros(0, 3).any(0)).tolist() == [False] * 3
    assert values(gj.zeros(3, 0, dtype=gj.int64).all(1)).tolist() == [True] * 3
    assert values(gj.tensor([[1, 0], [2, 3]]).all(1)).tolist() == [False, True]
    assert values(gj.jit(lambda x: x.any())(np.zeros((0,), bool))).item() is False
    empty = gj.zeros(0, 3)
    with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim 0 to have non-zero"):
        empty.amax(0)
    with pytest.raises(IndexError, match=r"max\(\): Expected reduction dim 0"):
        empty.max(0)
    with pytest.raises(IndexError, match=r"argmax\(\): Expected reduction dim -2"):
        empty.argmax(-2)
    with pytest.raises(RuntimeError, match=r"min\(\): Expected reduction dim to be specified"):
        empty.min()
    with pytest.raises(IndexError, match="test_numerics.py:"):
        gj.jit(lambda x: x.amax(0))(np.zeros((0, 3)))
    assert empty.amax(1).shape == (0,)              # reducing a non-empty axis is fine


# ---- broadcasting and axes ---------------------------------------------------------------

@pytest.mark.parametrize("sa, sb", [((3, 1), (1, 4)), ((2, 1, 3), (4, 1)), ((), (2, 3)),
                                    ((1,), (0,)), ((5, 1, 1), (1, 1, 2)), ((0, 1), (1, 4))])
def test_broadcasting_pairs_and_their_gradients(sa, sb):
    a, b = RNG.random(sa), RNG.random(sb)
    np.testing.assert_allclose(values(gj.jit(lambda a, b: a * b + a)(a, b)), a * b + a)
    ga, gb = gj.grad(lambda a, b: (a * b + a).sum(), argnums=(0, 1))(a, b)
    out_shape = np.broadcast_shapes(sa, sb)
    np.testing.assert_allclose(values(ga), unbroadcast(np.broadcast_to(b + 1, out_shape), sa))
    np.testing.assert_allclose(values(gb), unbroadcast(np.broadcast_to(a, out_shape), sb))


def unbroadcast(g: np.ndarray, shape) -> np.ndarray:
    """The gradient of a broadcast: g summed over the axes that broadcasting added/stretched."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    stretched = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True).reshape(shape)


@pytest.mark.parametrize("axes", [0, -1, (0, 2), (-1, -3), (1,), ()])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions_with_negative_axes_and_keepdim(axes, keepdim):
    x = RNG.standard_normal((2, 3, 4))
    np_axes = axes if axes != () else None
    for name, ref in (("sum", np.sum), ("mean", np.mean), ("amax", np.max),
                      ("amin", np.min), ("prod", np.prod)):
        got = getattr(gj.tensor(x), name)(axes, keepdim=keepdim)
        np.testing.assert_allclose(values(got), ref(x, axis=np_axes, keepdims=keepdim),
                                   rtol=1e-12)
    if axes != ():
        got = gj.tensor(x).var(axes, keepdim=keepdim)
        np.testing.assert_allclose(values(got), np.var(x, axis=axes, keepdims=keepdim, ddof=1),
                                   rtol=1e-12)


# ---- accuracy of long f32 reductions -----------------------------------------------------

def test_long_f32_reductions_are_accurate_enough_for_moderate_sizes(gradjit_env):
    gradjit_env("GRADJIT_BACKEND", None)
    x = (RNG.random(10 ** 5) + 1).astype(np.float32)
    exact = x.astype(np.float64).sum()
    assert abs(gj.jit(lambda a: a.sum())(x).item() - exact) / exact < 1e-5
    assert abs(gj.tensor(x).mean().item() - exact / x.size) / (exact / x.size) < 1e-5


@pytest.mark.parametrize("shape, axis", [((10 ** 6,), None), ((10 ** 6, 1), 0),
                                         ((1000, 1000), 0)])
def test_large_f32_sums_are_as_accurate_as_numpy(gradjit_env, shape, axis):
    gradjit_env("GRADJIT_BACKEND", None)
    x = np.full(shape, 0.1, np.float32)
    exact = x.astype(np.float64).sum(axis=axis)
    got = values(gj.jit(lambda a: a.sum(axis) if axis is not None else a.sum())(x))
    assert np.max(np.abs(got - exact) / exact) < 1e-6


# ---- rounding and integer division (//, %) -------------------------------------------------

def test_integer_floor_division_and_remainder_follow_python():
    a = np.arange(-20, 21)
    b = np.array([3, -3, 7, -7, 1, -1] * 7)[:41]
    q = gj.tensor(a) // gj.tensor(b)
    r = gj.tensor(a) % gj.tensor(b)
    assert q.dtype == gj.int64 and r.dtype == gj.int64
    assert values(q).tolist() == [int(x) // int(y) for x, y in zip(a, b)]
    assert values(r).tolist() == [int(x) % int(y) for x, y in zip(a, b)]
    assert values(gj.fmod(gj.tensor([7, -7]), 3)).tolist() == [1, -1]
    assert values(gj.tensor([7, -7]).div(2, rounding_mode="trunc")).tolist() == [3, -3]
    assert values(7 // gj.tensor([2, -2])).tolist() == [3, -4]
    q32 = gj.jit(lambda x: x // 2)(np.array([7, -7], np.int32))
    assert q32.dtype == gj.int32 and values(q32).tolist() == [3, -4]


def test_float_rounding_and_modulus_match_numpy():
    x = np.array([-2.5, -0.5, 0.5, 1.5, 2.5, 3.7, -3.2, 1e10 + 0.5, 2.0 ** 60, np.nan, np.inf])
    with np.errstate(invalid="ignore"):
        for name, ref in (("floor", np.floor), ("ceil", np.ceil), ("trunc", np.trunc),
                          ("round", np.round)):
            np.testing.assert_array_equal(values(getattr(gj.tensor(x), name)()), ref(x))
            np.testing.assert_array_equal(values(gj.jit(getattr(gj, name))(x)), ref(x))
        np.testing.assert_array_equal(values(gj.tensor(x) % 2), np.remainder(x, 2))
        np.testing.assert_array_equal(values(gj.tensor(x) // 2), np.floor_divide(x, 2))
        np.testing.assert_array_equal(values(gj.fmod(gj.tensor(x), -2.0)), np.fmod(x, -2.0))
        np.testing.assert_array_equal(values(gj.tensor([5.0, -3.0]) // 0.0), [np.inf, -np.inf])
    f32 = np.array([-2.5, 0.5, 1.5, 16777215.0, 3e9], np.float32)
    out = gj.jit(gj.round)(f32)
    assert out.dtype == gj.float32
    np.testing.assert_array_equal(values(out), np.round(f32))
    np.testing.assert_allclose(values(gj.round(gj.tensor([1.2345, -2.5551]), decimals=2)),
                               [1.23, -2.56], rtol=1e-6)
    assert values(gj.tensor([5, 3]).floor()).tolist() == [5, 3]


def test_rounding_gradients():
    x = np.array([-2.5, -0.3, 0.7, 1.5])
    np.testing.assert_array_equal(values(gj.grad(lambda x: gj.floor(x).sum())(x)), 0 * x)
    np.testing.assert_array_equal(values(gj.grad(lambda x: (x % 2).sum())(x)), 1 + 0 * x)
    gy = gj.grad(lambda y: (np.array([7.5, -7.5]) % y).sum())(np.array([5.0, 7.0]))
    np.testing.assert_array_equal(values(gy), -np.floor(np.array([7.5, -7.5]) / [5.0, 7.0]))
    t = gj.tensor(x, requires_grad=True)
    (t.floor() * t + t.frac()).sum().backward()
    np.testing.assert_allclose(values(t.grad), np.floor(x) + 1)
    w = gj.tensor([3.0, -3.0])
    w.div_(2, rounding_mode="floor")
    assert values(w).tolist() == [1.0, -2.0]


# ---- long chains of elementwise ops --------------------------------------------------------

def _chain(z, n):
    for _ in range(n):
        z = z * 1.0001 + 0.0001
    return z


def test_moderately_long_elementwise_chains_compile():
    x = np.ones(3, np.float32)
    want = _chain(x.astype(np.float64), 100)
    np.testing.assert_allclose(values(gj.jit(lambda z: _chain(z, 100))(x)), want, rtol=1e-5)
    np.testing.assert_allclose(values(_chain(gj.tensor(x), 100)), want, rtol=1e-5)


@pytest.mark.parametrize("front", ["jit", "eager"])
def test_long_elementwise_chains_compile(gradjit_env, front):
    gradjit_env("GRADJIT_BACKEND", None)
    x = np.ones(3, np.float32)
    if front == "jit":
        got = gj.jit(lambda z: _chain(z, 400))(x)
    else:
        got = _chain(gj.tensor(x), 400)
    np.testing.assert_allclose(values(got), _chain(x.astype(np.float64), 400), rtol=1e-4)


def test_where_with_python_scalars():
    x = gj.tensor([1.0, -2.0, 3.0])
    np.testing.assert_allclose(values(gj.where(x > 0, x, 0.0)), [1, 0, 3])
    out = gj.where(x > 0, 1.0, -1.0)
    assert out.dtype == gj.float32
    np.testing.assert_allclose(values(out), [1, -1, 1])
    mixed = gj.where(x > 0, 2, x)
    assert mixed.dtype == gj.float32
    np.testing.assert_allclose(values(mixed), [2, -2, 2])


def test_equal_is_one_python_bool_for_shape_and_values():
    a = gj.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert gj.equal(a, gj.tensor([[1.0, 2.0], [3.0, 4.0]])) is True
    assert gj.equal(a, a.T) is False                        # same shape, other values
    assert gj.equal(a, gj.tensor([1.0, 2.0, 3.0, 4.0])) is False   # same values, other shape
    assert gj.equal(a, a.double()) is True                  # dtypes promote, as in torch
    assert gj.equal(gj.tensor([float("nan")]), gj.tensor([float("nan")])) is False
