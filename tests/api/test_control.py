"""cond, fori_loop, while_loop, scan: native control flow, differentiable, composable."""
from __future__ import annotations

import numpy as np
import pytest

import gradjit as gj
from tests.api.test_functional import numeric_grad


# ---- cond ---------------------------------------------------------------------------------

def piecewise(x):
    return gj.cond(x.sum() > 0, lambda v: (v ** 2).sum(), lambda v: (gj.sin(v) * 3).sum(), x)


def test_cond_takes_both_branches_with_gradients():
    pos, neg = np.array([0.5, 1.5]), np.array([-0.5, -1.5])
    g = gj.value_and_grad(piecewise)
    value, grad = g(pos)
    np.testing.assert_allclose(float(value), np.sum(pos ** 2), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grad), 2 * pos, rtol=1e-12)
    value, grad = g(neg)
    np.testing.assert_allclose(float(value), np.sum(np.sin(neg) * 3), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grad), 3 * np.cos(neg), rtol=1e-12)
    assert g.trace_count == 1                  # one program holds both branches
    text = str(gj.make_ir(piecewise)(pos))
    assert text.count("= cond ") == 1 and "func @true_fn" in text and "func @false_fn" in text


def test_cond_forward_mode_and_eager_use():
    _, t = gj.jvp(piecewise, (np.array([1.0, 2.0]),), (np.array([1.0, 0.0]),))
    assert float(t) == pytest.approx(2.0)
    # outside any trace: recorded lazily and computed on read; a Python bool predicate works
    out = gj.cond(False, lambda a, b: a + b, lambda a, b: a - b, gj.tensor(5.0), 2.0)
    assert float(out) == 3.0


def test_cond_with_pytrees_and_captures():
    scale = gj.tensor(np.array([2.0, 3.0]))

    def f(p, flag):
        return gj.cond(flag, lambda q: {"y": q["a"] * scale, "z": q["b"]},
                       lambda q: {"y": q["a"] - scale, "z": q["b"] * 0.0}, p)

    p = {"a": np.array([1.0, 1.0]), "b": np.float32(4.0)}
    on = gj.jit(f)(p, np.bool_(True))
    off = gj.jit(f)(p, np.bool_(False))
    assert np.asarray(on["y"]).tolist() == [2.0, 3.0] and float(on["z"]) == 4.0
    assert np.asarray(off["y"]).tolist() == [-1.0, -2.0] and float(off["z"]) == 0.0


def test_cond_branch_mismatch_is_a_clear_error():
    with pytest.raises(TypeError, match="false_fn's results differ"):
        gj.cond(True, lambda x: x, lambda x: x.sum(), np.ones(3))
    with pytest.raises(TypeError, match="different structures"):
        gj.cond(True, lambda x: (x, x), lambda x: x, np.ones(3))


# ---- fori_loop ----------------------------------------------------------------------------

def test_fori_loop_power_iteration():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    a = q @ np.diag([5.0, 2.0, 1.0, 0.5, 0.1]) @ q.T

    @gj.jit
    def dominant(a, v):
        def step(i, v):
            w = a @ v
            return w / gj.sqrt((w * w).sum())
        v = gj.fori_loop(0, 60, step, v)
        return v, (v * (a @ v)).sum()

    v, lam = dominant(a, np.ones(5))
    assert float(lam) == pytest.approx(5.0, rel=1e-10)
    top = q[:, 0] * np.sign(q[:, 0] @ np.asarray(v))
    np.testing.assert_allclose(np.asarray(v), top, atol=1e-8)
    assert str(gj.make_ir(dominant)(a, np.ones(5))).count("= scan ") == 1


def test_fori_loop_static_bounds_is_differentiable():
    def f(x):
        return gj.fori_loop(2, 6, lambda i, v: v * x + i, np.float64(1.0))

    def f_np(x):
        v = 1.0
        for i in range(2, 6):
            v = v * x + i
        return v

    x = np.float64(0.7)
    assert float(f(x)) == pytest.approx(f_np(x), rel=1e-12)
    assert float(gj.grad(f)(x)) == pytest.approx(float(numeric_grad(f_np, x)), rel=1e-7)


def test_fori_loop_traced_bounds_runs_forward_only():
    f = gj.jit(lambda n, x: gj.fori_loop(0, n, lambda i, v: v * 2.0, x))
    assert np.asarray(f(np.int32(5), np.ones(2))).tolist() == [32.0, 32.0]
    assert np.asarray(f(np.int64(2), np.ones(2))).tolist() == [4.0, 4.0]
    with pytest.raises(TypeError, match="reverse-mode differentiation of while"):
        gj.grad(lambda x, n: gj.fori_loop(0, n, lambda i, v: v * x, x))(1.5, np.int32(3))


# ---- while_loop ---------------------------------------------------------------------------

def test_while_loop_newton_sqrt_with_pytree_carry():
    def sqrt(a):
        def cond(s):
            return gj.abs(s["x"] * s["x"] - a) > 1e-12

        def body(s):
            return {"x": 0.5 * (s["x"] + a / s["x"]), "steps": s["steps"] + 1}

        return gj.while_loop(cond, body, {"x": a, "steps": np.int32(0)})

    out = gj.jit(sqrt)(np.float64(2.0))
    assert float(out["x"]) == pytest.approx(np.sqrt(2.0), rel=1e-14)
    assert 3 <= int(out["steps"]) <= 8


def test_while_loop_forward_mode_but_no_reverse_mode():
    def f(x):
        return gj.while_loop(lambda v: v.sum() < 10.0, lambda v: v * x, x)

    x = np.array([1.5, 2.0])
    _, t = gj.jvp(f, (x,), (np.array([1.0, 0.0]),))
    eps = 1e-7
    fd = (np.asarray(f(x + [eps, 0])) - np.asarray(f(x - [eps, 0]))) / (2 * eps)
    np.testing.assert_allclose(np.asarray(t), fd, rtol=1e-5)
    with pytest.raises(TypeError, match="use fori_loop with static bounds or scan"):
        gj.grad(lambda x: f(x).sum())(x)


def test_while_loop_body_type_mismatch():
    with pytest.raises(TypeError, match="while_loop body_fun must return the carry's types"):
        gj.while_loop(lambda v: v < 3, lambda v: v.to(gj.float64) + 1, np.float32(0))


# ---- scan -----------------------------------------------------------------------------------

H, D, T = 4, 3, 100


def rnn_params(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((H, H)) * 0.4, rng.standard_normal((D, H)) * 0.4,
            rng.standard_normal((T, D)))


def rnn_scan(w, u, xs):
    def step(h, x):
        h = gj.tanh(h @ w + x @ u)
        return h, (h ** 2).sum()
    h, ys = gj.scan(step, gj.zeros(H, dtype=gj.float64), xs)
    return ys.sum() + h.sum()


def rnn_unrolled(w, u, xs):
    h, total = gj.zeros(H, dtype=gj.float64), 0.0
    for t in range(xs.shape[0]):
        h = gj.tanh(h @ w + xs[t] @ u)
        total = total + (h ** 2).sum()
    return total + h.sum()


def rnn_numpy(w, u, xs):
    h, total = np.zeros(H), 0.0
    for x in xs:
        h = np.tanh(h @ w + x @ u)
        total += np.sum(h ** 2)
    return total + h.sum()


def test_scan_rnn_gradient_equals_unrolled_and_finite_differences(gradjit_env):
    w, u, xs = rnn_params()
    gw, gu = gj.grad(rnn_scan, argnums=(0, 1))(w, u, xs)
    # NOTE: the unrolled reference is ~1000 ops of straight-line code; LLVM at O3 takes over
    # a minute on it, so the reference runs on the interpreter (same IR, same transforms)
    gradjit_env("GRADJIT_BACKEND", "interpret")
    uw, uu = gj.grad(rnn_unrolled, argnums=(0, 1))(w, u, xs)
    np.testing.assert_allclose(np.asarray(gw), np.asarray(uw), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gu), np.asarray(uu), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gw), numeric_grad(lambda v: rnn_numpy(v, u, xs), w),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(gu), numeric_grad(lambda v: rnn_numpy(w, v, xs), u),
                               rtol=1e-6, atol=1e-8)


def test_scan_ir_is_one_loop_whatever_the_trip_count():
    w, u, xs = rnn_params()
    text = str(gj.make_ir(rnn_scan)(w, u, xs))
    assert text.count("= scan ") == 1 and text.count("tanh") == 1
    grad_text = str(gj.make_ir(gj.grad(rnn_scan))(w, u, xs))
    assert grad_text.count("= scan ") == 2            # the taped forward loop and the adjoint
    short = str(gj.make_ir(gj.grad(rnn_scan))(w, u, xs[:10]))
    assert short.count("= scan ") == 2 and short.count("tanh") == grad_text.count("tanh")
    assert abs(len(short.splitlines()) - len(grad_text.splitlines())) <= 2


def test_scan_reverse_length_and_no_ys():
    xs = np.arange(4.0)
    carry, ys = gj.scan(lambda c, x: (c * 10 + x, c), np.float64(0.0), xs, reverse=True)
    assert float(carry) == 3210.0 and np.asarray(ys).tolist() == [321.0, 32.0, 3.0, 0.0]
    carry, ys = gj.scan(lambda c, _: ((c[0] + 1, c[1] * 2), None), (np.int32(0), 1.0), None,
                        length=5)
    assert int(carry[0]) == 5 and float(carry[1]) == 32.0 and ys is None


def test_python_scalar_carries_take_the_body_dtype():
    carry, ys = gj.scan(lambda c, x: (c + x, c), 0.0, np.arange(4.0))
    assert carry.dtype == gj.float64 and float(carry) == 6.0
    assert np.asarray(ys).tolist() == [0.0, 0.0, 1.0, 3.0]
    count = gj.while_loop(lambda v: v < 2.5, lambda v: v + np.ones((), np.float64), 0)
    assert count.dtype == gj.float64 and float(count) == 3.0


def test_scan_jvp_and_vmap():
    w, u, xs = rnn_params(1)
    tw = np.ones_like(w) * 0.01
    _, t = gj.jvp(lambda w: rnn_scan(w, u, xs), (w,), (tw,))
    eps = 1e-6
    fd = (rnn_numpy(w + eps * tw, u, xs) - rnn_numpy(w - eps * tw, u, xs)) / (2 * eps)
    assert float(t) == pytest.approx(fd, rel=1e-6)
    batch = np.stack([xs[:10], xs[10:20]])
    out = gj.vmap(rnn_scan, in_axes=(None, None, 0))(w, u, batch)
    np.testing.assert_allclose(np.asarray(out), [rnn_numpy(w, u, b) for b in batch], rtol=1e-12)


def test_scan_carry_mismatch_and_bad_lengths():
    with pytest.raises(TypeError, match="scan body must return the carry's types"):
        gj.scan(lambda c, x: (c + x.to(gj.float64), None), np.float32(0), np.ones(3))
    with pytest.raises(ValueError, match="inconsistent lengths"):
        gj.scan(lambda c, x: (c, None), 0.0, (np.ones(3), np.ones(4)))
    with pytest.raises(TypeError, match="pair"):
        gj.scan(lambda c, x: c, 0.0, np.ones(3))


# ---- gradients and forward mode through control flow -----------------------------------------

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
    rng = np.random.default_rng(99)
    h0, xs = np.float64(0.1), np.arange(4.0) / 3
    dh0, dxs = np.float64(1.0), rng.standard_normal(4)
    (h, ys), (dh, dys) = gj.jvp(rnn, (h0, xs), (dh0, dxs))
    ref_h, ref_ys = np_rnn(h0, xs)
    np.testing.assert_allclose(h.item(), ref_h, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ys), ref_ys, rtol=1e-12)
    eps = 1e-6
    hp, yp = np_rnn(h0 + eps * dh0, xs + eps * dxs)
    hm, ym = np_rnn(h0 - eps * dh0, xs - eps * dxs)
    np.testing.assert_allclose(dh.item(), (hp - hm) / (2 * eps), rtol=1e-7)
    np.testing.assert_allclose(np.asarray(dys), (yp - ym) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_control_flow_gradients():
    g = gj.grad(lambda x: gj.fori_loop(1, 4, lambda i, c: c * x + i, 0.0))(np.float64(2.0))
    assert g.item() == 6.0                                   # d/dx (x^2 + 2x + 3) at 2
    cond_grad = gj.grad(lambda x: gj.cond(x > 0, lambda v: v ** 2, lambda v: -v ** 3, x))
    assert cond_grad(np.float64(2.0)).item() == 4.0
    assert cond_grad(np.float64(-2.0)).item() == -12.0
    rev = gj.grad(lambda xs: gj.scan(lambda c, x: (c * x + 1, c), 1.0, xs, reverse=True)[0])
    np.testing.assert_allclose(np.asarray(rev(np.array([1.0, 2.0, 3.0]))), [9.0, 4.0, 2.0])
    ck = gj.grad(lambda x: gj.checkpoint(lambda v, n: v ** n)(x, 3).sum())(np.arange(3.0))
    np.testing.assert_allclose(np.asarray(ck), 3 * np.arange(3.0) ** 2)
