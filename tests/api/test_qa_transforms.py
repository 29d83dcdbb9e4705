"""QA: the functional transforms composed as a JAX user composes them.

Expected values are closed forms or NumPy; higher derivatives are checked against finite
differences of the lower ones.
"""
from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest

import gradjit as gj

RNG = np.random.default_rng(99)


def values(t) -> np.ndarray:
    return np.asarray(t)


def f_scalar(x):
    return gj.sin(x) * x ** 3


def df(x):
    return np.cos(x) * x ** 3 + 3 * x ** 2 * np.sin(x)


def d2f(x):
    return -np.sin(x) * x ** 3 + 6 * x ** 2 * np.cos(x) + 6 * x * np.sin(x)


def test_grad_of_grad_and_jit_sandwiches():
    x = np.float64(0.7)
    np.testing.assert_allclose(gj.grad(gj.grad(f_scalar))(x).item(), d2f(x), rtol=1e-12)
    np.testing.assert_allclose(gj.jit(gj.grad(gj.jit(f_scalar)))(x).item(), df(x), rtol=1e-12)
    np.testing.assert_allclose(gj.grad(gj.jit(gj.grad(f_scalar)))(x).item(), d2f(x), rtol=1e-12)
    third = gj.grad(gj.grad(gj.grad(f_scalar)))(x).item()
    eps = 1e-5
    np.testing.assert_allclose(third, (d2f(x + eps) - d2f(x - eps)) / (2 * eps), rtol=1e-6)


@pytest.mark.parametrize("in_axes", [(None, 0), (0, None), (0, 0)])
def test_vmap_of_grad_with_in_axes_tuples(in_axes):
    w = RNG.standard_normal((5, 3)) if in_axes[0] == 0 else RNG.standard_normal(3)
    xs = RNG.standard_normal((5, 3)) if in_axes[1] == 0 else RNG.standard_normal(3)

    def loss(w, x):
        return gj.tanh(x @ w).sum() * (w * w).sum()

    got = values(gj.vmap(gj.grad(loss), in_axes=in_axes)(w, xs))
    for i in range(5):
        wi = w[i] if in_axes[0] == 0 else w
        xi = xs[i] if in_axes[1] == 0 else xs
        t = np.tanh(xi @ wi)
        want = (1 - t ** 2) * xi * (wi * wi).sum() + t * 2 * wi
        np.testing.assert_allclose(got[i], want, rtol=1e-10)


def test_jacobian_and_hessian_with_pytree_inputs():
    def h(p):
        return gj.stack([p["a"].sum() * p["b"][0], p["b"][1] ** 2])

    jac = gj.jacobian(h)({"a": np.ones(2), "b": np.array([2.0, 3.0])})
    np.testing.assert_allclose(values(jac["a"]), [[2.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(values(jac["b"]), [[2.0, 0.0], [0.0, 6.0]])

    def energy(p):
        return (p["x"] ** 3).sum() + (p["x"] * p["y"]).sum()

    p = {"x": np.array([1.0, 2.0]), "y": np.array([0.5, -1.0])}
    hess = gj.hessian(energy)(p)
    np.testing.assert_allclose(values(hess["x"]["x"]), np.diag(6 * p["x"]))
    np.testing.assert_allclose(values(hess["x"]["y"]), np.eye(2))
    np.testing.assert_allclose(values(hess["y"]["y"]), np.zeros((2, 2)))


def test_jacobian_of_outputs_that_do_not_depend_on_the_input_is_zero():
    # was a ShapeError: the batched rows of a constant output had no batch axis
    jac = gj.jacobian(lambda x: gj.ones(2) * 3.0)(np.ones(3))
    assert jac.shape == (2, 3) and not values(jac).any()
    hess = gj.hessian(lambda x: x * 2)(np.ones(3))       # JAX: zeros of shape (3, 3, 3)
    assert hess.shape == (3, 3, 3) and not values(hess).any()
    jac2 = gj.jacobian(lambda x, y: x * 2 + y.sum() * 0 + 1, argnums=(0, 1))(np.ones(2),
                                                                          np.ones(3))
    np.testing.assert_allclose(values(jac2[0]), 2 * np.eye(2))
    assert jac2[1].shape == (2, 3) and not values(jac2[1]).any()


def rnn(h0, xs):
    def step(h, x):
        h = gj.tanh(h * 0.5 + x)
        return h, h * 2
    return gj.scan(step, h0, xs)


def np_rnn(h0, xs):
    h, ys = h0, []
    for x in xs:
        h = np.tanh(h * 0.5 + x)
        ys.append(2 * h)
    return h, np.array(ys)


def test_jvp_of_scan_matches_finite_differences():
    h0, xs = np.float64(0.1), np.arange(4.0) / 3
    dh0, dxs = np.float64(1.0), RNG.standard_normal(4)
    (h, ys), (dh, dys) = gj.jvp(rnn, (h0, xs), (dh0, dxs))
    ref_h, ref_ys = np_rnn(h0, xs)
    np.testing.assert_allclose(h.item(), ref_h, rtol=1e-12)
    np.testing.assert_allclose(values(ys), ref_ys, rtol=1e-12)
    eps = 1e-6
    hp, yp = np_rnn(h0 + eps * dh0, xs + eps * dxs)
    hm, ym = np_rnn(h0 - eps * dh0, xs - eps * dxs)
    np.testing.assert_allclose(dh.item(), (hp - hm) / (2 * eps), rtol=1e-7)
    np.testing.assert_allclose(values(dys), (yp - ym) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_vjp_with_pytree_outputs_and_has_aux_dicts():
    out, pullback = gj.vjp(lambda x: {"s": x.sum(), "sq": x ** 2}, np.arange(3.0))
    np.testing.assert_allclose(values(out["sq"]), [0.0, 1.0, 4.0])
    (ct,) = pullback({"s": np.float64(1.0), "sq": np.ones(3)})
    np.testing.assert_allclose(values(ct), 1 + 2 * np.arange(3.0))
    (value, aux), g = gj.value_and_grad(
        lambda x: ((x ** 2).sum(), {"m": x.mean(), "n": 3}), has_aux=True)(np.arange(3.0))
    assert value.item() == 5.0 and aux["m"].item() == 1.0
    np.testing.assert_allclose(values(g), [0.0, 2.0, 4.0])
    grads, aux = gj.grad(lambda x: (x.sum(), {"x2": x * 2}), has_aux=True)(np.ones(2))
    np.testing.assert_allclose(values(aux["x2"]), [2.0, 2.0])


Config = collections.namedtuple("Config", "scale power")


@dataclasses.dataclass(frozen=True)
class Act:
    scale: float
    name: str


def test_static_argnums_with_hashable_configs():
    f = gj.jit(lambda x, cfg: (x * cfg.scale) ** cfg.power, static_argnums=1)
    np.testing.assert_allclose(values(f(np.ones(2), Config(2.0, 3))), [8.0, 8.0])
    np.testing.assert_allclose(values(f(np.ones(2), Config(3.0, 2))), [9.0, 9.0])
    np.testing.assert_allclose(values(f(np.ones(2), Config(2.0, 3))), [8.0, 8.0])
    assert f.trace_count == 2
    g = gj.jit(lambda x, a: getattr(gj, a.name)(x * a.scale), static_argnums=(1,))
    np.testing.assert_allclose(values(g(np.ones(2), Act(2.0, "tanh"))), np.tanh([2.0, 2.0]))
    np.testing.assert_allclose(values(g(np.ones(2), Act(2.0, "sigmoid"))),
                               1 / (1 + np.exp([-2.0, -2.0])))


def test_value_and_grad_with_integer_extra_args_closures_and_scalars():
    x = np.arange(3.0)
    v, g = gj.value_and_grad(lambda x, k: (x ** k).sum())(x, 3)
    assert v.item() == 9.0
    np.testing.assert_allclose(values(g), 3 * x ** 2)
    v, g = gj.value_and_grad(lambda x, n: (x * n).sum())(x, np.arange(3))
    assert v.item() == 5.0
    np.testing.assert_allclose(values(g), np.arange(3.0))
    t, a = gj.tensor([1.0, 2.0]), np.array([3.0, 4.0])
    g = gj.grad(lambda x: (x * t * a).sum())(np.ones(2, np.float32))
    assert g.dtype == gj.float32
    np.testing.assert_allclose(values(g), [3.0, 8.0])
    assert gj.grad(lambda x, s: (x * s).sum(), argnums=1)(np.ones(2), 2.0).item() == 2.0
    assert gj.grad(lambda x: x * 2.0)(1.5).item() == 2.0


def test_argnums_tuples_order_and_negative():
    f = lambda a, b, c: (a * b * c).sum()       # noqa: E731
    a, b, c = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0])
    gc, ga = gj.grad(f, argnums=(2, 0))(a, b, c)
    np.testing.assert_allclose(values(gc), a * b)
    np.testing.assert_allclose(values(ga), b * c)
    np.testing.assert_allclose(values(gj.grad(f, argnums=-1)(a, b, c)), a * b)


def test_control_flow_gradients():
    g = gj.grad(lambda x: gj.fori_loop(1, 4, lambda i, c: c * x + i, 0.0))(np.float64(2.0))
    assert g.item() == 6.0                                   # d/dx (x^2 + 2x + 3) at 2
    cond_grad = gj.grad(lambda x: gj.cond(x > 0, lambda v: v ** 2, lambda v: -v ** 3, x))
    assert cond_grad(np.float64(2.0)).item() == 4.0
    assert cond_grad(np.float64(-2.0)).item() == -12.0
    rev = gj.grad(lambda xs: gj.scan(lambda c, x: (c * x + 1, c), 1.0, xs, reverse=True)[0])
    np.testing.assert_allclose(values(rev(np.array([1.0, 2.0, 3.0]))), [9.0, 4.0, 2.0])
    ck = gj.grad(lambda x: gj.checkpoint(lambda v, n: v ** n)(x, 3).sum())(np.arange(3.0))
    np.testing.assert_allclose(values(ck), 3 * np.arange(3.0) ** 2)


def test_hvp_by_jvp_of_grad_and_vmap_of_jacobian():
    def f(x):
        return (gj.exp(x) * x).sum() + (x[0] * x[1]) ** 2

    x, v = np.array([0.3, -0.2, 0.5]), np.array([1.0, 2.0, -1.0])
    _, hvp = gj.jvp(gj.grad(f), (x,), (v,))
    np.testing.assert_allclose(values(hvp), values(gj.hessian(f)(x)) @ v, rtol=1e-12)
    xs = RNG.standard_normal((4, 3))
    jacs = gj.vmap(gj.jacobian(lambda x: x ** 2))(xs)
    np.testing.assert_allclose(values(jacs), np.stack([np.diag(2 * r) for r in xs]))


def test_setitem_with_traced_indices_and_masks():
    a = np.arange(6.0).reshape(3, 2)

    def put(x, key, v):
        y = x.clone()
        y[key] = v
        return y

    np.testing.assert_allclose(values(gj.jit(put)(a, np.int64(-1), np.float64(5.0))),
                               [[0, 1], [2, 3], [5, 5]])
    np.testing.assert_allclose(values(gj.jit(put)(a, np.array([0, 2]), np.float64(-1.0))),
                               [[-1, -1], [2, 3], [-1, -1]])
    clipped = gj.jit(lambda x: put(x, x > 2, 0.0))(a)
    np.testing.assert_allclose(values(clipped), np.where(a > 2, 0, a))
    g = gj.grad(lambda x, v: (put(x, np.int64(1), v) * a).sum(), argnums=(0, 1))(
        a, np.array([7.0, 8.0]))
    np.testing.assert_allclose(values(g[0]), [[0, 1], [0, 0], [4, 5]])
    np.testing.assert_allclose(values(g[1]), [2, 3])
    per_row = gj.vmap(lambda x, i: put(x, i, 0.0))(a, np.array([0, 1, 0]))
    np.testing.assert_allclose(values(per_row), [[0, 1], [2, 0], [0, 5]])
    with pytest.raises(gj.TracerError, match="with a traced mask the values must be"):
        gj.jit(lambda x: put(x, x > 2, gj.tensor([1.0, 2.0])))(a)


def test_random_numbers_drawn_while_tracing_warn_that_they_are_frozen():
    f = gj.jit(lambda x: x + gj.randn(3))
    with pytest.warns(UserWarning, match=r"drawn once, when the function is traced") as rec:
        first = values(f(np.zeros(3, np.float32)))
    assert rec[0].filename.endswith("test_qa_transforms.py")
    np.testing.assert_array_equal(values(f(np.zeros(3, np.float32))), first)   # frozen
    drop = gj.nn.Dropout(0.5)
    with pytest.warns(UserWarning, match="same dropout mask"):
        gj.jit(lambda x: drop(x))(np.ones(4, np.float32))
    with pytest.warns(UserWarning, match="while tracing"):
        gj.scan(lambda c, x: (c + gj.rand(1).sum(), None), 0.0, np.ones(3))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drop(gj.ones(4))                            # eager: fresh numbers each call, no warning
        gj.randn(2)


def test_static_minus_zero_is_its_own_signature():
    f = gj.jit(lambda x, s: x / s)
    assert f(np.ones(1), 0.0).item() == np.inf
    assert f(np.ones(1), -0.0).item() == -np.inf


def test_static_nan_is_traced_once():
    f = gj.jit(lambda x, s: x * s)
    for _ in range(3):
        f(np.ones(1), float("nan"))
    assert f.trace_count == 1
