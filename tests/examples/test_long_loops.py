"""A recurrent cell unrolled in Python over hundreds of steps (pytorch/examples'
time_sequence_prediction: two LSTMCells over 999 steps) runs in bounded programs
(tracer/bounded.py, tracer/autograd/by_node.py): the values equal a NumPy LSTM, the
gradient equals float64 finite differences, few programs are compiled whatever the length,
and below the bound the one-program path gives the same numbers."""
import numpy as np
import pytest

import gradjit as gj
import runtime
from tracer import bounded

H = 3


def _model(dtype):
    gj.manual_seed(11)
    cell = gj.nn.LSTMCell(1, H)
    if dtype == gj.float64:
        cell = cell.double()
    return cell


def _loss(cell, x, y, v):
    """Mean squared error of h_t . v against y_t, stepping the cell once per column of x."""
    h = gj.zeros(x.shape[0], H, dtype=x.dtype)
    c = gj.zeros(x.shape[0], H, dtype=x.dtype)
    outs = []
    for t in range(x.shape[1]):
        h, c = cell(x[:, t:t + 1], (h, c))
        outs.append(h @ v)
    return ((gj.stack(outs, 1) - y) ** 2).mean()


def _numpy_loss(params, x, y, v):
    w_ih, w_hh, b_ih, b_hh = params
    h = np.zeros((x.shape[0], H))
    c = np.zeros((x.shape[0], H))
    outs = []
    for t in range(x.shape[1]):
        gates = x[:, t:t + 1] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(gates, 4, axis=1)
        sig = lambda z: 1 / (1 + np.exp(-z))             # noqa: E731
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        outs.append(h @ v)
    return np.mean((np.stack(outs, 1) - y) ** 2)


def _data(steps, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sin(np.linspace(0, 20, steps))[None, :] + 0.1 * rng.standard_normal((2, steps))
    return x, np.roll(x, -1, axis=1), rng.standard_normal(H)


def test_500_unrolled_lstm_steps_match_numpy_and_finite_differences_f64():
    steps = 500
    x, y, v = _data(steps)
    cell = _model(gj.float64)
    xt, yt, vt = (gj.tensor(a) for a in (x, y, v))
    before = dict(bounded.STATS)
    compiles = runtime.cache_info()["compiles"]
    loss = _loss(cell, xt, yt, vt)
    loss.backward()
    assert bounded.STATS["backwards"] == before["backwards"] + 1     # the bounded tier ran
    assert bounded.STATS["reads"] > before["reads"]
    # the programs are per op or node kind, not per step
    assert runtime.cache_info()["compiles"] - compiles < 80
    params = [p.detach().numpy().copy() for p in cell.parameters()]
    np.testing.assert_allclose(loss.item(), _numpy_loss(params, x, y, v), rtol=1e-10)
    grads = [p.grad.numpy().copy() for p in cell.parameters()]
    rng = np.random.default_rng(1)
    for _ in range(2):                          # directional derivatives, central differences
        d = [rng.standard_normal(p.shape) for p in params]
        eps = 1e-6
        up = _numpy_loss([p + eps * e for p, e in zip(params, d)], x, y, v)
        down = _numpy_loss([p - eps * e for p, e in zip(params, d)], x, y, v)
        analytic = sum(float(np.sum(g * e)) for g, e in zip(grads, d))
        np.testing.assert_allclose(analytic, (up - down) / (2 * eps), rtol=1e-6)
    # a second pass over a new graph of the same structure compiles nothing new
    compiles = runtime.cache_info()["compiles"]
    cell.zero_grad()
    _loss(cell, xt, yt, vt).backward()
    assert runtime.cache_info()["compiles"] == compiles
    np.testing.assert_allclose([p.grad.numpy() for p in cell.parameters()][1], grads[1],
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", [gj.float32, gj.float64], ids=["f32", "f64"])
def test_bounded_tier_equals_the_one_program_path(dtype, monkeypatch):
    """Below the bound a short loop compiles as one program; with the bounds lowered the
    same loop goes op by op and node by node: same loss and gradients."""
    x, y, v = _data(6, seed=2)
    results = []
    for low in (False, True):
        if low:
            monkeypatch.setattr(bounded, "MAX_OPS", 8)
            monkeypatch.setattr(bounded, "MAX_NODES", 8)
        cell = _model(dtype)
        xt, yt, vt = (gj.tensor(a, dtype=dtype) for a in (x, y, v))
        backwards = bounded.STATS["backwards"]
        loss = _loss(cell, xt, yt, vt)
        loss.backward()
        assert bounded.STATS["backwards"] == backwards + low
        results.append([loss.item()] + [p.grad.numpy().copy() for p in cell.parameters()])
    tol = 1e-12 if dtype == gj.float64 else 2e-5
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)


def test_a_long_no_grad_rollout_is_computed_in_pieces():
    """Reading a value at the end of a long pending history (time_sequence_prediction's
    1000-step prediction under no_grad) computes it op by op, equal to NumPy."""
    x, y, v = _data(300, seed=3)
    cell = _model(gj.float64)
    reads = bounded.STATS["reads"]
    with gj.no_grad():
        loss = _loss(cell, gj.tensor(x), gj.tensor(y), gj.tensor(v))
    params = [p.detach().numpy() for p in cell.parameters()]
    np.testing.assert_allclose(loss.item(), _numpy_loss(params, x, y, v), rtol=1e-10)
    assert bounded.STATS["reads"] == reads + 1


def test_bounded_backward_twice_raises_as_pytorch_and_retain_graph_accumulates(monkeypatch):
    """The bounded pass frees the graph like any backward: a second one raises PyTorch's
    error; with retain_graph=True it can run again and the gradients add up."""
    monkeypatch.setattr(bounded, "MAX_OPS", 8)
    monkeypatch.setattr(bounded, "MAX_NODES", 8)
    x, y, v = _data(5, seed=4)
    cell = _model(gj.float64)
    loss = _loss(cell, gj.tensor(x), gj.tensor(y), gj.tensor(v))
    loss.backward(retain_graph=True)
    once = cell.weight_hh.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(cell.weight_hh.grad.numpy(), 2 * once, rtol=1e-12)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()
