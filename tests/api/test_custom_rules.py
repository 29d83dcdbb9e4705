"""gj.custom_vjp / gj.custom_jvp: the user's rules are what grad, vjp, jacobian, jvp, vmap and
jit use, as jax.custom_vjp / jax.custom_jvp behave (examples from JAX's documentation)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from ir import parse, walk_ops
from tests.gradcheck import numeric_grad as _fd

X = np.array([0.3, -1.2, 2.0])
Y = np.array([2.0, -1.0, 0.5])


# ---- custom_vjp ----------------------------------------------------------------------------

@gj.custom_vjp
def sin_times(x, y):
    return gj.sin(x) * y


def _sin_times_fwd(x, y):
    return sin_times(x, y), (gj.cos(x), gj.sin(x), y)


def _sin_times_bwd(res, g):
    cos_x, sin_x, y = res
    return (cos_x * g * y, sin_x * g)


sin_times.defvjp(_sin_times_fwd, _sin_times_bwd)


@gj.custom_vjp
def tripled_grad(x):
    """Identity whose gradient the rule says is 3: proves the rule, not the body, is used."""
    return x * 1.0


tripled_grad.defvjp(lambda x: (x * 1.0, None), lambda res, g: (3.0 * g,))


def test_custom_vjp_values_and_gradients_match_finite_differences():
    np.testing.assert_allclose(sin_times(X, Y).numpy(), np.sin(X) * Y, rtol=1e-14)
    np.testing.assert_allclose(gj.jit(sin_times)(X, Y).numpy(), np.sin(X) * Y, rtol=1e-14)
    gx, gy = gj.grad(lambda x, y: sin_times(x, y).sum(), argnums=(0, 1))(X, Y)
    np.testing.assert_allclose(gx.numpy(), _fd(lambda v: (np.sin(v) * Y).sum(), X), rtol=1e-7)
    np.testing.assert_allclose(gy.numpy(), _fd(lambda v: (np.sin(X) * v).sum(), Y), rtol=1e-7)


def test_custom_vjp_rule_is_used_by_grad_vjp_jacobian_and_jit():
    threes = np.full(3, 3.0)
    np.testing.assert_array_equal(gj.grad(lambda x: tripled_grad(x).sum())(X).numpy(), threes)
    np.testing.assert_array_equal(gj.jit(gj.grad(lambda x: tripled_grad(x).sum()))(X).numpy(),
                                  threes)
    out, pullback = gj.vjp(tripled_grad, X)
    np.testing.assert_array_equal(out.numpy(), X)
    np.testing.assert_array_equal(pullback(np.array([1.0, 2.0, 3.0]))[0].numpy(), [3, 6, 9])
    np.testing.assert_array_equal(gj.jacobian(tripled_grad)(X).numpy(), 3 * np.eye(3))
    # forward mode: the transpose of bwd (linear in g)
    _, tangent = gj.jvp(tripled_grad, (X,), (np.ones(3),))
    np.testing.assert_array_equal(tangent.numpy(), threes)


def test_custom_vjp_under_the_interpreter_matches_native(monkeypatch):
    native = gj.grad(lambda x, y: (sin_times(x, y) ** 2).sum())(X, Y).numpy()
    monkeypatch.setenv("GRADJIT_BACKEND", "interpret")
    interpreted = gj.grad(lambda x, y: (sin_times(x, y) ** 2).sum())(X, Y).numpy()
    np.testing.assert_allclose(native, interpreted, rtol=1e-14)


def test_custom_vjp_grad_of_grad_differentiates_the_rule():
    gg = gj.grad(lambda x: gj.grad(lambda u: sin_times(u, Y).sum())(x).sum())(X)
    np.testing.assert_allclose(gg.numpy(), -np.sin(X) * Y, rtol=1e-12)
    hess = gj.hessian(lambda x: sin_times(x, Y).sum())(X)
    np.testing.assert_allclose(hess.numpy(), np.diag(-np.sin(X) * Y), rtol=1e-12, atol=1e-15)


def test_custom_vjp_rule_is_batched_by_vmap():
    xs, ys = np.random.default_rng(0).standard_normal((2, 4, 3))
    per_row = gj.vmap(gj.grad(lambda x, y: sin_times(x, y).sum()))(xs, ys).numpy()
    np.testing.assert_allclose(per_row, np.cos(xs) * ys, rtol=1e-12)
    summed = gj.grad(lambda x: gj.vmap(tripled_grad)(x).sum())(xs).numpy()
    np.testing.assert_array_equal(summed, np.full((4, 3), 3.0))
    # one operand batched, the other not: its cotangent sums over the batch
    gy = gj.grad(lambda y: gj.vmap(sin_times, in_axes=(0, None))(xs, y).sum())(Y).numpy()
    np.testing.assert_allclose(gy, np.sin(xs).sum(0), rtol=1e-12)


@gj.custom_vjp
def clip_gradient(lo, hi, x):
    return x


def _clip_fwd(lo, hi, x):
    return x, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return (None, None, gj.clamp(g, lo, hi))


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def test_custom_vjp_jax_clip_gradient_example():
    """JAX's documentation example: the gradient of clip_gradient(-0.75, 0.75, sin(x)) is
    clip(1, -.75, .75) * cos(x)."""
    grad_fn = gj.grad(lambda x: clip_gradient(-0.75, 0.75, gj.sin(x)).sum())
    np.testing.assert_allclose(grad_fn(X).numpy(), 0.75 * np.cos(X), rtol=1e-14)


def _scaled(k, x):
    return k * x


scaled = gj.custom_vjp(_scaled, nondiff_argnums=(0,))
scaled.defvjp(lambda k, x: (k * x, None), lambda k, res, g: (k * g * 10.0,))


def test_custom_vjp_nondiff_argnums_pass_through_to_bwd_first():
    g = gj.grad(lambda x: scaled(2.0, x).sum())(X).numpy()
    np.testing.assert_array_equal(g, np.full(3, 20.0))
    np.testing.assert_array_equal(gj.jit(scaled, static_argnums=0)(2.0, X).numpy(), 2 * X)


@gj.custom_vjp
def pytree_fn(params, x):
    return {"out": params["w"] * x + params["b"], "aux": (x * 2.0,)}


def _pytree_fwd(params, x):
    return pytree_fn(params, x), (params["w"], x)


def _pytree_bwd(res, g):
    w, x = res
    gw = (g["out"] * x).sum()
    return ({"w": gw, "b": g["out"].sum()}, g["out"] * w + 2.0 * g["aux"][0])


pytree_fn.defvjp(_pytree_fwd, _pytree_bwd)


def test_custom_vjp_with_pytrees_in_and_out():
    params = {"w": np.float64(1.5), "b": np.float64(-0.5)}

    def loss(p, x):
        out = pytree_fn(p, x)
        return (out["out"] ** 2).sum() + out["aux"][0].sum()
    gp, gx = gj.grad(loss, argnums=(0, 1))(params, X)
    want_w = _fd(lambda w: ((w * X - 0.5) ** 2).sum() + 2 * X.sum(), np.float64(1.5))
    np.testing.assert_allclose(float(gp["w"]), want_w, rtol=1e-7)
    np.testing.assert_allclose(float(gp["b"]), (2 * (1.5 * X - 0.5)).sum(), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), 2 * (1.5 * X - 0.5) * 1.5 + 2.0, rtol=1e-12)


def test_custom_vjp_is_one_op_in_the_ir_and_round_trips():
    fn = gj.make_ir(gj.jit(sin_times))(X, Y)
    ops = [op.prim.name for op in fn.body]
    assert ops == ["custom_vjp_call"]
    assert [r.name for r in fn.body[0].regions] == ["sin_times", "sin_times_fwd", "sin_times_bwd"]
    text = str(fn)
    assert str(parse(text)) == text
    np.testing.assert_allclose(gj.run_ir(text, X, Y), np.sin(X) * Y, rtol=1e-14)
    # after grad the op is gone: its fwd is inlined forward and its bwd in the adjoint
    gfn = gj.make_ir(gj.grad(lambda x: sin_times(x, Y).sum()))(X)
    assert not any(op.prim.name == "custom_vjp_call" for op in walk_ops(gfn))


def test_custom_vjp_errors_are_clear():
    @gj.custom_vjp
    def f(x):
        return x

    with pytest.raises(AttributeError, match="No VJP defined for custom_vjp function f"):
        f(X)
    f.defvjp(lambda x: x, lambda res, g: (g,))
    with pytest.raises(TypeError, match="fwd rule must produce a pair"):
        f(X)
    f.defvjp(lambda x: (x, None), lambda res, g: g)
    with pytest.raises(TypeError, match="bwd rule must produce a tuple"):
        f(X)
    f.defvjp(lambda x: (x, None), lambda res, g: (g, g))
    with pytest.raises(TypeError, match="number of differentiable arguments"):
        f(X)
    f.defvjp(lambda x: (x, None), lambda res, g: (g.sum(),))
    with pytest.raises(ValueError, match="same shape as the primal input"):
        f(X)


def test_custom_vjp_with_a_nonlinear_bwd_refuses_forward_mode():
    @gj.custom_vjp
    def f(x):
        return x * 1.0

    f.defvjp(lambda x: (x * 1.0, None), lambda res, g: (gj.clamp(g, -1.0, 1.0),))
    np.testing.assert_array_equal(gj.grad(lambda x: (f(x) * 5.0).sum())(X).numpy(), np.ones(3))
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        gj.jvp(f, (X,), (np.ones(3),))


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 3))
def test_custom_vjp_vmap_of_grad_for_random_shapes(shape, batch):
    rng = np.random.default_rng(len(shape) * 10 + batch)
    xs = rng.standard_normal((batch, *shape))
    ys = rng.standard_normal((batch, *shape))
    got = gj.vmap(gj.grad(lambda x, y: sin_times(x, y).sum()))(xs, ys).numpy()
    np.testing.assert_allclose(got, np.cos(xs) * ys, rtol=1e-12, atol=1e-15)


# ---- custom_jvp ----------------------------------------------------------------------------

@gj.custom_jvp
def log1pexp(x):
    return gj.log1p(gj.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    x, = primals
    x_dot, = tangents
    ans = log1pexp(x)
    return ans, x_dot * (1 - 1 / (1 + gj.exp(x)))


Z = np.array([0.5, -3.0, 100.0])


def test_custom_jvp_jax_log1pexp_example_is_stable_at_100():
    """JAX's documentation: the plain derivative of log1p(exp(x)) is nan at x=100; the rule
    gives 1."""
    want = 1 / (1 + np.exp(-Z))
    np.testing.assert_allclose(gj.grad(lambda x: log1pexp(x).sum())(Z).numpy(), want,
                               rtol=1e-14)
    value, tangent = gj.jvp(log1pexp, (Z,), (np.ones(3),))
    np.testing.assert_allclose(value.numpy(), np.log1p(np.exp(Z)), rtol=1e-14)
    np.testing.assert_allclose(tangent.numpy(), want, rtol=1e-14)
    np.testing.assert_allclose(gj.jit(gj.vmap(gj.grad(log1pexp)))(Z).numpy(), want, rtol=1e-14)


def test_custom_jvp_grad_of_grad_matches_finite_differences():
    x = Z[:2]
    gg = gj.grad(lambda v: gj.grad(lambda u: log1pexp(u).sum())(v).sum())(x).numpy()
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(gg, sig * (1 - sig), rtol=1e-10)


def test_custom_jvp_rule_is_used_not_the_body():
    @gj.custom_jvp
    def f(x):
        return gj.sin(x)

    f.defjvp(lambda p, t: (gj.sin(p[0]), 2.0 * t[0]))
    np.testing.assert_array_equal(gj.grad(lambda x: f(x).sum())(X).numpy(), np.full(3, 2.0))
    np.testing.assert_array_equal(gj.jacobian(f)(X).numpy(), 2 * np.eye(3))
    _, t = gj.jvp(f, (X,), (np.ones(3),))
    np.testing.assert_array_equal(t.numpy(), np.full(3, 2.0))


def test_custom_jvp_defjvps_and_nondiff_argnums():
    @gj.custom_jvp
    def f(x, y):
        return gj.sin(x) * y

    f.defjvps(lambda x_dot, primal_out, x, y: gj.cos(x) * x_dot * y,
              lambda y_dot, primal_out, x, y: gj.sin(x) * y_dot)
    gx, gy = gj.grad(lambda x, y: f(x, y).sum(), argnums=(0, 1))(X, Y)
    np.testing.assert_allclose(gx.numpy(), np.cos(X) * Y, rtol=1e-14)
    np.testing.assert_allclose(gy.numpy(), np.sin(X), rtol=1e-14)

    def app(fn, x):
        return fn(x)
    app = gj.custom_jvp(app, nondiff_argnums=(0,))

    @app.defjvp
    def _app_jvp(fn, primals, tangents):
        x, = primals
        return app(fn, x), 5.0 * tangents[0]
    g = gj.grad(lambda x: app(gj.tanh, x).sum())(X).numpy()
    np.testing.assert_array_equal(g, np.full(3, 5.0))


def test_custom_jvp_rule_nonlinear_in_tangents_refuses_reverse_mode():
    @gj.custom_jvp
    def f(x):
        return x * 1.0

    f.defjvp(lambda p, t: (p[0] * 1.0, t[0] * t[0]))
    with pytest.raises(TypeError, match="linear in the tangents"):
        gj.grad(lambda x: f(x).sum())(X)
    with pytest.raises(TypeError, match="corresponding shapes and dtypes"):
        g = gj.custom_jvp(lambda x: x * 1.0)
        g.defjvp(lambda p, t: (p[0] * 1.0, t[0].sum()))
        g(X)


def test_custom_jvp_is_one_op_and_round_trips():
    fn = gj.make_ir(gj.jit(log1pexp))(Z)
    assert [op.prim.name for op in fn.body] == ["custom_jvp_call"]
    text = str(fn)
    assert str(parse(text)) == text
    np.testing.assert_allclose(gj.run_ir(text, Z), np.log1p(np.exp(Z)), rtol=1e-14)


def test_custom_rules_drive_the_imperative_autograd():
    x = gj.tensor(X, requires_grad=True)
    y = tripled_grad(x)
    assert type(y.grad_fn).__name__ == "CustomVjpCallBackward0"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 3.0))
    z = gj.tensor(Z, requires_grad=True)
    log1pexp(z).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), 1 / (1 + np.exp(-Z)), rtol=1e-14)


def test_custom_rules_inside_scan_cond_and_checkpoint_match_finite_differences():
    w = np.array([0.3, -0.7])
    xs = np.random.default_rng(0).standard_normal((5, 2))

    def loss(w, xs):
        def step(c, x):
            c = sin_times(c * w + x, np.ones(2)) + log1pexp(c) * 0.5
            return c, c
        return (gj.scan(step, np.zeros(2), xs)[1] ** 2).sum()

    def np_loss(w):
        c, total = np.zeros(2), 0.0
        for x in xs:
            c = np.sin(c * w + x) + np.log1p(np.exp(c)) * 0.5
            total += (c ** 2).sum()
        return total
    np.testing.assert_allclose(gj.grad(loss)(w, xs).numpy(), _fd(np_loss, w), rtol=1e-6)
    g = gj.grad(lambda v: gj.checkpoint(lambda u: tripled_grad(u).sum())(v))(w).numpy()
    np.testing.assert_array_equal(g, [3.0, 3.0])
    g = gj.grad(lambda v: gj.cond(v.sum() < 0, lambda u: tripled_grad(u).sum(),
                                  lambda u: u.sum(), v))(w).numpy()
    np.testing.assert_array_equal(g, [3.0, 3.0])
