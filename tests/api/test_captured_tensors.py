"""Tensors closed over by a jitted function or a control-flow body (tracer/captures.py).

A captured Tensor is an input of the traced program, not a constant baked in at trace
time: `.backward()` through the jit call or the cond/scan/fori_loop op reaches it (checked
against central finite differences in float64, on the compiled code and on the reference
interpreter), and a cached jitted function reads its current value on every call (after
`optimizer.step()` or any in-place update), as PyTorch does.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tests.api.test_functional import numeric_grad

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 3))
W = RNG.standard_normal((3, 2))


def leaf(a) -> gj.Tensor:
    return gj.tensor(np.asarray(a, np.float64), requires_grad=True)


def grad_of(loss_of_w, w0: np.ndarray) -> np.ndarray:
    """w.grad after loss_of_w(w).backward(), for a fresh leaf w = w0."""
    w = leaf(w0)
    loss_of_w(w).backward()
    assert w.grad is not None, "the captured tensor got no gradient"
    return w.grad.numpy()


def value_of(loss_of_w, w: np.ndarray) -> float:
    return float(loss_of_w(gj.tensor(w)).item())


# each builds the loss from a captured w (never an argument of the traced body)
def jit_closure(w):
    return gj.jit(lambda x: gj.tanh(x @ w).sum())(gj.tensor(X))


def nested_jit_closure(w):
    inner = gj.jit(lambda x: gj.tanh(x @ w))
    return gj.jit(lambda x: (inner(x) ** 2).sum())(gj.tensor(X))


def scan_closure(w):
    def step(c, x):
        h = gj.tanh(x @ w + c)
        return h, h.sum()
    _, ys = gj.scan(step, gj.zeros(2, dtype=gj.float64), gj.tensor(X))
    return (ys ** 2).sum()


def fori_closure(w):
    v = gj.tensor(X[0])
    return gj.fori_loop(0, 3, lambda i, h: gj.tanh(h @ w @ w.T), v).sum()


def cond_closure(w):
    x = gj.tensor(X)
    return gj.cond(x.sum() > 0, lambda a: (a @ w).exp().sum(), lambda a: (a @ w).sin().sum(), x)


def cond_inside_jit_closure(w):
    body = gj.jit(lambda x: gj.cond(x.sum() < 0, lambda a: (a @ w).cos().sum(),
                                    lambda a: (a @ w).sum() * 2, x))
    return body(gj.tensor(X))


def checkpoint_closure(w):
    return gj.checkpoint(lambda x: gj.tanh(x @ w).sum())(gj.tensor(X))


CASES = [jit_closure, nested_jit_closure, scan_closure, fori_closure, cond_closure,
         cond_inside_jit_closure, checkpoint_closure]


@pytest.mark.parametrize("backend", ["native", "interpret"])
@pytest.mark.parametrize("loss", CASES, ids=lambda f: f.__name__)
def test_gradient_of_a_captured_tensor_matches_finite_differences(loss, backend, gradjit_env):
    gradjit_env("GRADJIT_BACKEND", backend)
    want = numeric_grad(lambda w: value_of(loss, w), W)
    np.testing.assert_allclose(grad_of(loss, W), want, rtol=1e-6, atol=1e-7)


def test_captured_and_explicit_inputs_both_get_gradients():
    w, x = leaf(W), leaf(X)
    f = gj.jit(lambda a: (a @ w).sin().sum())
    (f(x) + (w ** 2).sum()).backward()
    np.testing.assert_allclose(w.grad.numpy(), X.T @ np.cos(X @ W) + 2 * W, rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), np.cos(X @ W) @ W.T, rtol=1e-12)


def test_the_gradient_of_a_functional_grad_reaches_the_captured_tensor():
    # gj.grad over a function calling a jitted closure: d/dx is 2 x w^2; its sum's
    # gradient with respect to the closed-over w is 4 x w
    w, x = leaf([0.5, -1.5]), gj.tensor([2.0, 3.0])
    scaled = gj.jit(lambda a: a * w)
    gx = gj.grad(lambda a: (scaled(a) ** 2).sum())(x)
    a, w0 = np.array([2.0, 3.0]), np.array([0.5, -1.5])
    np.testing.assert_allclose(gx.detach().numpy(), 2 * a * w0 ** 2)
    gx.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 4 * a * w0)


def test_functional_grad_through_a_jitted_closure_over_the_argument():
    def loss(v):
        return gj.jit(lambda x: gj.tanh(x @ v).sum())(gj.tensor(X))
    got = gj.grad(loss)(gj.tensor(W))
    want = numeric_grad(lambda w: value_of(loss, w), W)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


def test_a_while_loop_over_a_captured_tensor_refuses_reverse_mode():
    w = leaf([0.5])
    out = gj.while_loop(lambda c: c.sum() < 10, lambda c: c + w, gj.tensor([1.0], dtype=gj.float64))
    with pytest.raises(Exception, match="(?i)while"):
        out.sum().backward()


def test_a_cached_jit_reads_the_current_value_of_a_captured_tensor():
    w = gj.tensor([1.0, 2.0])
    f = gj.jit(lambda a: (a * w).sum())
    x = gj.ones(2)
    assert f(x).item() == 3.0
    with gj.no_grad():
        w.add_(1.0)
    assert f(x).item() == 5.0
    w.mul_(2.0)                                # pending (not computed yet) when f runs
    assert f(x).item() == 10.0
    assert f.trace_count == 1


def test_a_captured_tensor_that_changes_shape_is_retraced():
    w = gj.tensor([1.0, 2.0])
    f = gj.jit(lambda a: a.sum() + w.sum())
    x = gj.ones(2)
    assert f(x).item() == 5.0
    w.data = gj.tensor([1.0, 2.0, 3.0])
    assert f(x).item() == 8.0
    assert f.trace_count == 2


def test_training_a_jitted_closure_over_a_model_matches_eager_training():
    def train(use_jit: bool) -> list[float]:
        gj.manual_seed(0)
        model = gj.nn.Sequential(gj.nn.Linear(3, 4), gj.nn.Tanh(), gj.nn.Linear(4, 1))
        opt = gj.optim.SGD(model.parameters(), lr=0.1)
        x, y = gj.tensor(X, dtype=gj.float32), gj.tensor(X[:, :1], dtype=gj.float32)

        def loss_of(a):
            return ((model(a) - y) ** 2).mean()
        loss_fn = gj.jit(loss_of) if use_jit else loss_of
        losses = []
        for _ in range(5):
            opt.zero_grad()
            loss = loss_fn(x)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses
    eager, jitted = train(False), train(True)
    assert jitted[-1] < jitted[0]
    np.testing.assert_allclose(jitted, eager, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 4), k=st.integers(1, 3), m=st.integers(1, 3), seed=st.integers(0, 99))
def test_random_shapes_of_a_captured_weight(n, k, m, seed):
    rng = np.random.default_rng(seed)
    x, w0 = rng.standard_normal((n, k)), rng.standard_normal((k, m))

    def loss(w):
        def step(c, row):
            return c + gj.tanh(row @ w), None
        final, _ = gj.scan(step, gj.zeros(m, dtype=gj.float64), gj.tensor(x))
        return gj.jit(lambda c: (c * c).sum() + (w ** 3).sum())(final)
    want = numeric_grad(lambda w: value_of(loss, w), w0)
    np.testing.assert_allclose(grad_of(loss, w0), want, rtol=1e-6, atol=1e-7)
