"""Hand-written update loops run in linear time: the pending graph never outgrows a step.

The loops are pytorch/tutorials' polynomial_tensor.py (updates `a -= lr * grad_a` of plain
tensors, `loss.item()` every step) and two_layer_net_autograd.py (`loss.backward()`, then
`w -= lr * w.grad; w.grad.zero_()` under no_grad), written as the tutorials write them.
Checked with counters (Exprs behind the weights, programs compiled), never timings, and
against a NumPy re-implementation of the same arithmetic.
"""
import math

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import gradjit as gj
import runtime
from runtime import config
from tracer import tensor as tensor_module


def _graph_size(*tensors) -> int:
    """How many Exprs the pending values of tensors reach (0 for realised ones)."""
    seen, stack = set(), [t._expr for t in tensors]
    while stack:
        e = stack.pop()
        if id(e) in seen or e.data is not None:
            continue
        seen.add(id(e))
        stack.extend(e.args)
    return len(seen)


def _programs() -> tuple | None:
    if config.backend() == "interpret":
        return None
    info = runtime.cache_info()
    return info["misses"], info["compiles"]


def _polynomial_tensor(steps: int, counters: list):
    x = gj.linspace(-math.pi, math.pi, 200)
    y = gj.sin(x)
    a, b, c, d = (gj.tensor(v) for v in (0.1, -0.2, 0.3, 0.05))
    lr = 1e-5
    losses = []
    for _ in range(steps):
        y_pred = a + (b * x) + (c * x.pow(2)) + (d * x.pow(3))
        losses.append((y_pred - y).pow(2).sum().item())
        grad_y_pred = -2.0 * (y - y_pred)
        grad_a = grad_y_pred.sum()
        grad_b = gj.matmul(grad_y_pred, x).sum()
        grad_c = gj.matmul(grad_y_pred, x.pow(2)).sum()
        grad_d = gj.matmul(grad_y_pred, x.pow(3)).sum()
        a -= lr * grad_a
        b -= lr * grad_b
        c -= lr * grad_c
        d -= lr * grad_d
        counters.append((_graph_size(a, b, c, d), _programs()))
    return losses, [t.item() for t in (a, b, c, d)]


def _polynomial_numpy(steps: int):
    x = np.linspace(-math.pi, math.pi, 200, dtype=np.float32).astype(np.float64)
    y = np.sin(x)
    a, b, c, d = 0.1, -0.2, 0.3, 0.05
    lr = 1e-5
    losses = []
    for _ in range(steps):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        losses.append(((y_pred - y) ** 2).sum())
        g = -2.0 * (y - y_pred)
        a, b, c, d = (a - lr * g.sum(), b - lr * (g @ x), c - lr * (g @ x ** 2),
                      d - lr * (g @ x ** 3))
    return losses, [a, b, c, d]


def test_polynomial_tensor_loop_keeps_one_step_pending_and_compiles_once():
    counters = []
    losses, coefs = _polynomial_tensor(40, counters)
    sizes = [s for s, _ in counters]
    # each step's update is computed with the next step's read: one step's worth pending
    assert max(sizes) == sizes[0] > 0
    programs = [p for _, p in counters]
    assert programs[3:] == [programs[3]] * (len(programs) - 3)
    want_losses, want_coefs = _polynomial_numpy(40)
    np.testing.assert_allclose(losses, want_losses, rtol=2e-4)
    np.testing.assert_allclose(coefs, want_coefs, rtol=2e-4)
    assert losses[-1] < losses[0]


def _two_layer_autograd(steps: int, counters: list, rng):
    n, d_in, h, d_out = 8, 12, 6, 3
    x_np = rng.standard_normal((n, d_in)).astype(np.float32)
    y_np = rng.standard_normal((n, d_out)).astype(np.float32)
    w1_np = rng.standard_normal((d_in, h)).astype(np.float32)
    w2_np = rng.standard_normal((h, d_out)).astype(np.float32)
    x, y = gj.tensor(x_np), gj.tensor(y_np)
    w1 = gj.tensor(w1_np, requires_grad=True)
    w2 = gj.tensor(w2_np, requires_grad=True)
    lr = 1e-3
    losses = []
    for t in range(steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        if t % 3 == 2:
            losses.append(loss.item())
        loss.backward()
        with gj.no_grad():
            w1 -= lr * w1.grad
            w2 -= lr * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
        counters.append((_graph_size(w1, w2, w1.grad, w2.grad), _programs()))
    return losses, w1.detach().numpy(), w2.detach().numpy(), (x_np, y_np, w1_np, w2_np)


def _two_layer_numpy(steps: int, x, y, w1, w2):
    x, y, w1, w2 = (v.astype(np.float64) for v in (x, y, w1, w2))
    losses = []
    for t in range(steps):
        hidden = x @ w1
        relu = np.maximum(hidden, 0)
        diff = relu @ w2 - y
        if t % 3 == 2:
            losses.append((diff ** 2).sum())
        g_pred = 2 * diff
        g_w2 = relu.T @ g_pred
        g_w1 = x.T @ ((g_pred @ w2.T) * (hidden > 0))
        w1, w2 = w1 - 1e-3 * g_w1, w2 - 1e-3 * g_w2
    return losses, w1, w2


def test_two_layer_net_autograd_loop_is_bounded_and_matches_numpy():
    counters = []
    losses, w1, w2, inputs = _two_layer_autograd(30, counters, np.random.default_rng(0))
    sizes = [s for s, _ in counters]
    assert sizes[3:] == [sizes[3]] * (len(sizes) - 3)
    programs = [p for _, p in counters]
    assert programs[4:] == [programs[4]] * (len(programs) - 4)
    want_losses, want_w1, want_w2 = _two_layer_numpy(30, *inputs)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4)
    np.testing.assert_allclose(w1, want_w1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w2, want_w2, rtol=1e-4, atol=1e-5)


def _two_layer_tensor(steps: int, counters: list, rng):
    """pytorch/tutorials two_layer_net_tensor.py: the backward written by hand, with
    `grad_h[h < 0] = 0` (a mask whose count of True changes every step)."""
    n, d_in, hidden, d_out = 8, 12, 6, 3
    inputs = [rng.standard_normal(s).astype(np.float32)
              for s in ((n, d_in), (n, d_out), (d_in, hidden), (hidden, d_out))]
    x, y, w1, w2 = (gj.tensor(v) for v in inputs)
    lr = 1e-3
    losses = []
    for _ in range(steps):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        losses.append((y_pred - y).pow(2).sum().item())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h_relu = grad_y_pred.mm(w2.t())
        grad_h = grad_h_relu.clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
        counters.append(_programs())
    return losses, w1.numpy(), w2.numpy(), inputs


def _two_layer_tensor_numpy(steps: int, x, y, w1, w2):
    x, y, w1, w2 = (v.astype(np.float64) for v in (x, y, w1, w2))
    losses = []
    for _ in range(steps):
        h = x @ w1
        relu = np.maximum(h, 0)
        diff = relu @ w2 - y
        losses.append((diff ** 2).sum())
        g_pred = 2 * diff
        g_h = g_pred @ w2.T
        g_h[h < 0] = 0
        w1, w2 = w1 - 1e-3 * (x.T @ g_h), w2 - 1e-3 * (relu.T @ g_pred)
    return losses, w1, w2


def test_two_layer_net_tensor_loop_compiles_once_whatever_the_mask_holds():
    counters = []
    losses, w1, w2, inputs = _two_layer_tensor(30, counters, np.random.default_rng(1))
    if counters[0] is not None:
        # the mask is never read: its count of True does not pick a new program
        assert counters[4:] == [counters[4]] * (len(counters) - 4)
    want_losses, want_w1, want_w2 = _two_layer_tensor_numpy(30, *inputs)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4)
    np.testing.assert_allclose(w1, want_w1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w2, want_w2, rtol=1e-4, atol=1e-5)


def test_an_update_is_computed_at_the_next_read_of_anything():
    w = gj.tensor([1.0, 2.0])
    w -= 0.5 * gj.tensor([2.0, 2.0])
    assert w._expr.data is None
    assert gj.tensor([3.0]).exp().item() == pytest.approx(math.exp(3.0), rel=1e-6)
    assert w._expr.data is not None
    np.testing.assert_array_equal(w.numpy(), [0.0, 1.0])


def test_a_dead_updated_tensor_is_forgotten():
    w = gj.tensor([1.0, 2.0])
    w += 1.0
    assert any(ref() is w for ref in tensor_module.updated_tensors().values())
    del w
    gj.tensor([1.0]).exp().item()
    assert all(ref() is not None for ref in tensor_module.updated_tensors().values())


@settings(max_examples=15, deadline=None)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
       steps=st.integers(2, 6), read_every=st.integers(1, 3), seed=st.integers(0, 99))
def test_update_loops_of_any_shape_match_numpy_and_stay_one_step_deep(shape, steps,
                                                                      read_every, seed):
    """w -= lr * (w - target) * x, with an unrelated value read every few steps."""
    rng = np.random.default_rng(seed)
    w0, x, target = (rng.standard_normal(shape) for _ in range(3))
    w, xt, tt = gj.tensor(w0), gj.tensor(x), gj.tensor(target)
    want = w0.copy()
    depth = []
    for step in range(steps):
        w -= 0.1 * (w - tt) * xt
        want = want - 0.1 * (want - target) * x
        if step % read_every == 0:
            gj.tensor(float(step)).exp().item()
            depth.append(_graph_size(w))
    np.testing.assert_allclose(w.numpy(), want, rtol=1e-12, atol=1e-12)
    assert depth == [0] * len(depth)          # each read also computed w's pending update


def _batchnorm_training(read_every_step: bool):
    gj.manual_seed(0)
    rng = np.random.default_rng(0)
    x = gj.tensor(rng.standard_normal((16, 3, 8, 8)).astype(np.float32))
    y = gj.tensor(rng.integers(0, 4, 16))
    model = gj.nn.Sequential(gj.nn.Conv2d(3, 4, 3, padding=1), gj.nn.BatchNorm2d(4),
                             gj.nn.ReLU(), gj.nn.Flatten(), gj.nn.Linear(4 * 64, 4))
    bn = model[1]
    opt = gj.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sizes = []
    for _ in range(6):
        opt.zero_grad()
        loss = gj.nn.functional.cross_entropy(model(x), y)
        if read_every_step:
            loss.item()
        loss.backward()
        opt.step()
        sizes.append(_graph_size(bn.running_mean, bn.running_var))
    return sizes, bn.running_mean.numpy(), bn.running_var.numpy()


def test_batchnorm_running_stats_stay_one_step_deep_when_only_backward_runs():
    """BatchNorm updates running_mean/var in place under no_grad in every training forward.
    A loop that never reads anything but calls backward() (a DataLoader loop printing every
    50 steps) must not let those pending values grow by a step per step: backward computes
    them along (it was 42 pending ops per step, and the eval after 200 steps took minutes).
    The statistics equal those of the same loop reading the loss every step."""
    sizes, mean, var = _batchnorm_training(read_every_step=False)
    assert sizes == [0] * 6, sizes
    _, mean_read, var_read = _batchnorm_training(read_every_step=True)
    np.testing.assert_allclose(mean, mean_read, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(var, var_read, rtol=1e-6)
    assert np.abs(mean).max() > 1e-3 and not np.allclose(var, 1.0)     # they were updated
