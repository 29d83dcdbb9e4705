"""vjp, jvp, jacobian, hessian and checkpoint, and how the transforms compose."""
from __future__ import annotations

import numpy as np
import pytest

import gradjit as gj
from tests.api.test_functional import numeric_grad


def numeric_jacobian(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of array-valued f at x: shape f(x).shape + x.shape."""
    x = np.asarray(x, np.float64)
    cols = []
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        cols.append((np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * eps))
    out_shape = np.shape(cols[0])
    return np.stack(cols, axis=-1).reshape(out_shape + x.shape)


def f_vec(x, w):
    """R^(3) x R^(3,2) -> R^(2): a small nonlinear map."""
    return gj.tanh(x @ w) * gj.exp(-(x ** 2).sum())


def f_vec_np(x, w):
    return np.tanh(x @ w) * np.exp(-(x ** 2).sum())


@pytest.fixture
def xw():
    rng = np.random.default_rng(3)
    return rng.standard_normal(3), rng.standard_normal((3, 2))


def test_vjp_matches_finite_differences(xw):
    x, w = xw
    out, vjp_fn = gj.vjp(f_vec, x, w)
    np.testing.assert_allclose(np.asarray(out), f_vec_np(x, w), rtol=1e-12)
    ct = np.array([0.3, -1.2])
    cx, cw = vjp_fn(ct)
    np.testing.assert_allclose(np.asarray(cx), numeric_grad(lambda v: f_vec_np(v, w) @ ct, x),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(cw), numeric_grad(lambda v: f_vec_np(x, v) @ ct, w),
                               rtol=1e-6, atol=1e-9)
    with pytest.raises(TypeError, match="cotangent"):
        vjp_fn(np.ones(3))


def test_vjp_with_pytrees_and_aux():
    def f(p):
        y = p["a"] * p["b"]
        return (y, y.sum()), y.mean()

    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    out, vjp_fn, aux = gj.vjp(f, p, has_aux=True)
    assert float(aux) == 5.5
    (cp,) = vjp_fn((np.array([1.0, 0.0]), np.float64(2.0)))
    np.testing.assert_allclose(np.asarray(cp["a"]), [3.0 + 6.0, 8.0])
    np.testing.assert_allclose(np.asarray(cp["b"]), [1.0 + 2.0, 4.0])


def test_jvp_matches_finite_differences(xw):
    x, w = xw
    tx, tw = np.array([0.5, -1.0, 2.0]), np.ones((3, 2)) * 0.1
    out, tangent = gj.jvp(f_vec, (x, w), (tx, tw))
    np.testing.assert_allclose(np.asarray(out), f_vec_np(x, w), rtol=1e-12)
    eps = 1e-6
    fd = (f_vec_np(x + eps * tx, w + eps * tw) - f_vec_np(x - eps * tx, w - eps * tw)) / (2 * eps)
    np.testing.assert_allclose(np.asarray(tangent), fd, rtol=1e-6, atol=1e-9)
    with pytest.raises(TypeError, match="tangent"):
        gj.jvp(f_vec, (x, w), (tx.astype(np.float32), tw))


def test_jacobian_reverse_mode(xw):
    x, w = xw
    jx = gj.jacobian(f_vec)(x, w)
    assert jx.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(jx), numeric_jacobian(lambda v: f_vec_np(v, w), x),
                               rtol=1e-6, atol=1e-9)
    jx2, jw = gj.jacobian(f_vec, argnums=(0, 1))(x, w)
    assert jw.shape == (2, 3, 2)
    np.testing.assert_allclose(np.asarray(jw), numeric_jacobian(lambda v: f_vec_np(x, v), w),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(jx2), np.asarray(jx), rtol=1e-12)


def test_jacobian_of_matrix_output_and_pytree_output():
    a = np.arange(6.0).reshape(2, 3) / 6
    j = gj.jacobian(lambda m: gj.sin(m) * 2)(a)
    assert j.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(np.asarray(j).reshape(6, 6), np.diag(2 * np.cos(a).ravel()),
                               atol=1e-15)
    out = gj.jacobian(lambda v: {"sq": v * v, "s": v.sum()})(np.array([1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(out["sq"]), [[2.0, 0.0], [0.0, 4.0]])
    np.testing.assert_allclose(np.asarray(out["s"]), [1.0, 1.0])


def test_jacobian_has_aux():
    jac, aux = gj.jacobian(lambda v: (v ** 3, {"norm": (v * v).sum()}), has_aux=True)(
        np.array([1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(jac), np.diag([3.0, 12.0]))
    assert float(aux["norm"]) == 5.0


def test_hessian_matches_finite_differences_of_gradient():
    def f(x):
        return (gj.exp(x[0] * x[1]) + x[2] ** 3 * x[0]).sum()

    def grad_np(x):
        e = np.exp(x[0] * x[1])
        return np.array([e * x[1] + x[2] ** 3, e * x[0], 3 * x[2] ** 2 * x[0]])

    x = np.array([0.3, -0.5, 1.2])
    h = np.asarray(gj.hessian(f)(x))
    assert h.shape == (3, 3)
    np.testing.assert_allclose(h, numeric_jacobian(grad_np, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h, h.T, rtol=1e-12)


def test_hvp_is_jvp_of_grad():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 4))

    def f(x):
        return gj.log(1 + (x @ a) ** 2).sum()

    def grad_np(x):
        y = x @ a
        return a @ (2 * y / (1 + y ** 2))

    x, v = rng.standard_normal(4), rng.standard_normal(4)
    g, hv = gj.jvp(gj.grad(f), (x,), (v,))
    np.testing.assert_allclose(np.asarray(g), grad_np(x), rtol=1e-12)
    eps = 1e-6
    fd = (grad_np(x + eps * v) - grad_np(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(np.asarray(hv), fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(hv), np.asarray(gj.hessian(f)(x)) @ v, rtol=1e-10)


def test_transforms_compose_under_jit(xw):
    x, w = xw

    @gj.jit
    def both(x, w):
        out, vjp_fn = gj.vjp(f_vec, x, w)
        _, t = gj.jvp(lambda x: f_vec(x, w), (x,), (gj.ones(3, dtype=gj.float64),))
        return vjp_fn(gj.ones(2, dtype=gj.float64))[0], t

    cx, t = both(x, w)
    np.testing.assert_allclose(np.asarray(cx), numeric_grad(lambda v: f_vec_np(v, w).sum(), x),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(t), numeric_jacobian(
        lambda v: f_vec_np(v, w), x).sum(axis=1), rtol=1e-6, atol=1e-9)


def test_checkpoint_keeps_values_and_gradients():
    def block(h, w):
        return gj.tanh(h @ w)

    def loss(w, h, remat):
        f = gj.checkpoint(block) if remat else block
        for _ in range(3):
            h = f(h, w)
        return (h ** 2).sum()

    rng = np.random.default_rng(7)
    w, h = rng.standard_normal((4, 4)) * 0.5, rng.standard_normal((2, 4))
    plain = gj.value_and_grad(loss)(w, h, False)
    remat = gj.value_and_grad(loss)(w, h, True)
    np.testing.assert_allclose(float(remat[0]), float(plain[0]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(remat[1]), np.asarray(plain[1]), rtol=1e-12)
    # the backward pass recomputes each block's tanh inside its own region
    text = str(gj.make_ir(gj.grad(loss))(w, h, True))
    assert text.count("func @remat_vjp") == 3 and text.count("tanh") >= 6


# ---- composed as a JAX user composes them ----------------------------------------------------

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


def test_jacobian_and_hessian_with_pytree_inputs():
    def h(p):
        return gj.stack([p["a"].sum() * p["b"][0], p["b"][1] ** 2])

    jac = gj.jacobian(h)({"a": np.ones(2), "b": np.array([2.0, 3.0])})
    np.testing.assert_allclose(np.asarray(jac["a"]), [[2.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(np.asarray(jac["b"]), [[2.0, 0.0], [0.0, 6.0]])

    def energy(p):
        return (p["x"] ** 3).sum() + (p["x"] * p["y"]).sum()

    p = {"x": np.array([1.0, 2.0]), "y": np.array([0.5, -1.0])}
    hess = gj.hessian(energy)(p)
    np.testing.assert_allclose(np.asarray(hess["x"]["x"]), np.diag(6 * p["x"]))
    np.testing.assert_allclose(np.asarray(hess["x"]["y"]), np.eye(2))
    np.testing.assert_allclose(np.asarray(hess["y"]["y"]), np.zeros((2, 2)))


def test_jacobian_of_outputs_that_do_not_depend_on_the_input_is_zero():
    # was a ShapeError: the batched rows of a constant output had no batch axis
    jac = gj.jacobian(lambda x: gj.ones(2) * 3.0)(np.ones(3))
    assert jac.shape == (2, 3) and not np.asarray(jac).any()
    hess = gj.hessian(lambda x: x * 2)(np.ones(3))       # JAX: zeros of shape (3, 3, 3)
    assert hess.shape == (3, 3, 3) and not np.asarray(hess).any()
    jac2 = gj.jacobian(lambda x, y: x * 2 + y.sum() * 0 + 1, argnums=(0, 1))(np.ones(2),
                                                                          np.ones(3))
    np.testing.assert_allclose(np.asarray(jac2[0]), 2 * np.eye(2))
    assert jac2[1].shape == (2, 3) and not np.asarray(jac2[1]).any()


def test_vjp_with_pytree_outputs_and_has_aux_dicts():
    out, pullback = gj.vjp(lambda x: {"s": x.sum(), "sq": x ** 2}, np.arange(3.0))
    np.testing.assert_allclose(np.asarray(out["sq"]), [0.0, 1.0, 4.0])
    (ct,) = pullback({"s": np.float64(1.0), "sq": np.ones(3)})
    np.testing.assert_allclose(np.asarray(ct), 1 + 2 * np.arange(3.0))
    (value, aux), g = gj.value_and_grad(
        lambda x: ((x ** 2).sum(), {"m": x.mean(), "n": 3}), has_aux=True)(np.arange(3.0))
    assert value.item() == 5.0 and aux["m"].item() == 1.0
    np.testing.assert_allclose(np.asarray(g), [0.0, 2.0, 4.0])
    grads, aux = gj.grad(lambda x: (x.sum(), {"x2": x * 2}), has_aux=True)(np.ones(2))
    np.testing.assert_allclose(np.asarray(aux["x2"]), [2.0, 2.0])


def test_hvp_by_jvp_of_grad_and_vmap_of_jacobian():
    rng = np.random.default_rng(99)
    def f(x):
        return (gj.exp(x) * x).sum() + (x[0] * x[1]) ** 2

    x, v = np.array([0.3, -0.2, 0.5]), np.array([1.0, 2.0, -1.0])
    _, hvp = gj.jvp(gj.grad(f), (x,), (v,))
    np.testing.assert_allclose(np.asarray(hvp), np.asarray(gj.hessian(f)(x)) @ v, rtol=1e-12)
    xs = rng.standard_normal((4, 3))
    jacs = gj.vmap(gj.jacobian(lambda x: x ** 2))(xs)
    np.testing.assert_allclose(np.asarray(jacs), np.stack([np.diag(2 * r) for r in xs]))
