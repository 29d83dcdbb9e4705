"""A graph with a custom autograd.Function node replays its backward program
(tracer/autograd/replay.py keys the node by what its user backward computes, run every
backward as PyTorch runs it: tracer/autograd/function.py replay_key). polynomial_custom_
function.py re-emitted its whole backward every step before."""
import numpy as np
import pytest

import gradjit as gj
from tracer.autograd import replay

CALLS = []


class Legendre3(gj.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, g):
        CALLS.append("Legendre3")
        (x,) = ctx.saved_tensors
        return g * 1.5 * (5 * x ** 2 - 1)


class Scaled(gj.autograd.Function):
    """Its backward reads a Python value on ctx and a saved tensor's data (item())."""
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        ctx.save_for_backward(x)
        return x * scale

    @staticmethod
    def backward(ctx, g):
        CALLS.append("Scaled")
        (x,) = ctx.saved_tensors
        bump = 1.0 if x.sum().item() > 0 else -1.0
        return g * ctx.scale + bump, None


def _train(steps: int, keyed: bool, monkeypatch) -> list:
    """polynomial_custom_function's loop (float64, fixed data): the parameters after every
    step, with the backward replay on (keyed) or off (every backward emitted)."""
    if not keyed:
        monkeypatch.setattr(replay, "describe", lambda run, targets: None)
    x = gj.linspace(-np.pi, np.pi, 200, dtype=gj.float64)
    y = gj.sin(x)
    a, b, c, d = (gj.full((), v, dtype=gj.float64, requires_grad=True)
                  for v in (0.0, -1.0, 0.0, 0.3))
    out = []
    for _ in range(steps):
        y_pred = a + b * Legendre3.apply(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with gj.no_grad():
            for p in (a, b, c, d):
                p -= 5e-6 * p.grad
                p.grad = None
        out.append([p.item() for p in (a, b, c, d)])
    monkeypatch.undo()
    return out


def test_replayed_steps_equal_emitted_ones_bitwise(monkeypatch):
    before = replay.STATS["hits"]
    CALLS.clear()
    keyed = _train(12, True, monkeypatch)
    hits = replay.STATS["hits"] - before
    assert hits >= 10                       # the program was replayed, not re-emitted
    assert CALLS == ["Legendre3"] * 12      # the user's backward ran once a backward()
    CALLS.clear()
    emitted = _train(12, False, monkeypatch)
    assert CALLS == ["Legendre3"] * 12
    assert keyed == emitted                 # (floats: bitwise)


def test_a_backward_reading_python_values_and_data_is_never_stale():
    """The key holds what the backward computed this time: a changed ctx value or a
    changed branch on the data gives a new program, not the last one's numbers."""
    CALLS.clear()
    for step, (scale, sign) in enumerate([(2.0, 1), (2.0, 1), (3.0, 1), (3.0, -1),
                                          (2.0, 1), (2.0, -1)]):
        x = gj.tensor(sign * np.array([0.5, 1.5, 2.0]), requires_grad=True)
        (Scaled.apply(x, scale) ** 2).sum().backward()
        xs = sign * np.array([0.5, 1.5, 2.0])
        g = 2 * xs * scale                                  # d/dy of y^2 at y = x * scale
        want = g * scale + (1.0 if xs.sum() > 0 else -1.0)
        assert x.grad.numpy().tolist() == want.tolist(), step
    assert CALLS == ["Scaled"] * 6


def test_retained_graph_runs_the_backward_each_time():
    for _ in range(3):
        CALLS.clear()
        x = gj.tensor([0.25, -0.5], dtype=gj.float64, requires_grad=True)
        z = Legendre3.apply(x).sum()
        z.backward(retain_graph=True)
        z.backward()
        assert CALLS == ["Legendre3"] * 2
        np.testing.assert_array_equal(x.grad.numpy(),
                                      2 * 1.5 * (5 * np.array([0.25, -0.5]) ** 2 - 1))
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            z.backward()         # (PyTorch calls the user's backward, which raises)


class TwoOut(gj.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, g1, g2):
        CALLS.append("TwoOut")
        out = 0
        if g1 is not None:
            out = out + 2 * g1
        if g2 is not None:
            out = out + 3 * g2
        return out


def test_unmaterialized_gradients_are_emitted_each_time():
    CALLS.clear()
    for k in range(4):
        x = gj.tensor([1.0, 2.0], requires_grad=True)
        u, v = TwoOut.apply(x)
        (u.sum() if k % 2 else (u + v).sum()).backward()
        assert x.grad.tolist() == ([2.0, 2.0] if k % 2 else [5.0, 5.0])
    assert CALLS == ["TwoOut"] * 4


def test_replayed_gradient_matches_finite_differences():
    def loss_np(p):
        xs = np.linspace(-1, 1, 7)
        t = p[0] + p[1] * xs
        return float(np.sum((0.5 * (5 * t ** 3 - 3 * t)) ** 2))
    p0 = np.array([0.1, 0.7])
    for _ in range(3):                                   # miss, then hits
        p = gj.tensor(p0, requires_grad=True)
        xs = gj.linspace(-1, 1, 7, dtype=gj.float64)
        (Legendre3.apply(p[0] + p[1] * xs) ** 2).sum().backward()
        eps, fd = 1e-6, []
        for i in range(2):
            d = np.zeros(2)
            d[i] = eps
            fd.append((loss_np(p0 + d) - loss_np(p0 - d)) / (2 * eps))
        np.testing.assert_allclose(p.grad.numpy(), fd, rtol=1e-7)


def test_a_node_the_backward_does_not_execute_is_not_run():
    """backward(inputs=[w]) does not reach the custom node: its backward must not run (as
    PyTorch), and replay keys such a graph no more (it is emitted)."""
    CALLS.clear()
    for _ in range(3):
        x = gj.tensor([0.5, 1.0], requires_grad=True)
        w = gj.tensor([2.0, 3.0], requires_grad=True)
        (Legendre3.apply(x) * w).sum().backward(inputs=[w])
        assert x.grad is None
        assert w.grad.tolist() == (0.5 * (5 * np.array([0.5, 1.0]) ** 3 - 3 *
                                          np.array([0.5, 1.0]))).astype(np.float32).tolist()
    assert CALLS == []
