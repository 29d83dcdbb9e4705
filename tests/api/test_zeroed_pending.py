"""A value zeroed in place (`w.grad.zero_()`) is a bare constant: a read of other values
leaves it pending (tensor.updated_pending, pending_expr.bare_constant) instead of writing
an array of zeros that the next backward reads and adds. two_layer_net_autograd.py's loop
(`loss.item()` before the backward, then `w -= lr * w.grad; w.grad.zero_()` under no_grad):
the programs' result and input counts, and the values bitwise against the same loop with
no reads and with `w.grad = None`, and against a float64 NumPy reference."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tracer import pending_expr, step_capture, tensor as tensor_module
from tracer.autograd import engine


@pytest.fixture
def programs(monkeypatch):
    """(name, inputs, results) of every program run by realisations and backward passes."""
    seen = []
    run = tensor_module.run_function

    def counting(fn, arrays):
        out = run(fn, arrays)
        seen.append((fn.name, len(arrays), len(out)))
        return out
    monkeypatch.setattr(tensor_module, "run_function", counting)
    monkeypatch.setattr(engine, "run_function", counting)
    return seen


def _arrays(n, d_in, h, d_out, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32)
            for s in ((n, d_in), (n, d_out), (d_in, h), (h, d_out))]


def two_layer(arrays, steps: int, read_every: int = 0, reset: str = "zero", seen=None):
    """The loop; returns the losses read, the weights, and per step whether the grads were
    still pending after the read."""
    x, y = gj.tensor(arrays[0]), gj.tensor(arrays[1])
    weights = [gj.tensor(a, requires_grad=True) for a in arrays[2:]]
    losses, pending = [], []
    for i in range(steps):
        w1, w2 = weights
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        if read_every and i % read_every == 1:
            losses.append(loss.item())
            if i > 1 and reset == "zero":
                pending.append([w.grad._expr.data is None for w in weights])
        loss.backward()
        with gj.no_grad():
            for w in weights:
                w -= 1e-4 * w.grad
                if reset == "zero":
                    w.grad.zero_()
                else:
                    w.grad = None
    return losses, [w.detach().numpy().copy() for w in weights], pending


def test_a_read_leaves_zeroed_grads_pending(programs):
    arrays = _arrays(8, 5, 4, 3)
    losses, _, pending = two_layer(arrays, 8, read_every=2)
    assert pending and all(p == [True, True] for p in pending)
    reads = [p for p in programs if p[0] != "backward"][:len(losses)]   # (not the last)
    backwards = [p for p in programs if p[0] == "backward"]
    # the read's results: the loss, the two new weights and the five recorded forward
    # values; not the two zeroed grads
    assert len(reads) == 4 and all(r[2] == 8 for r in reads)
    # the backward after a read takes no arrays of zeros (9 inputs, was 11)
    after_read = [backwards[i][1] for i in range(3, 8, 2)]
    assert after_read == [9] * len(after_read)


def test_reading_the_zeroed_value_itself_computes_it():
    w = gj.tensor([1.0, -2.0, 3.0])
    w.zero_()
    other = (w + 1.0).sum()
    assert other.item() == 3.0
    assert w._expr.data is None and pending_expr.bare_constant(w._expr)
    assert w.numpy().tolist() == [0.0, 0.0, 0.0]
    w.add_(2.5)                                  # no longer a bare constant: computed along
    assert not pending_expr.bare_constant(w._expr)
    (w * 2.0).sum().item()
    assert w._expr.data is not None and w.numpy().tolist() == [2.5, 2.5, 2.5]


def test_a_followed_zeroed_value_is_seen_without_materialising():
    """A zero_() that follows a captured step (its result pending): bare_constant reads
    the template, not the Ops."""
    x = gj.linspace(-1.0, 1.0, 16)
    a, acc = gj.tensor(0.5), gj.zeros(16)
    for _ in range(6):
        acc.zero_()
        acc += a * x
        (acc - x).pow(2).sum().item()
        a -= 1e-1 * ((acc - x) * x).sum()
    z = gj.zeros(16)
    for _ in range(2):
        z.zero_()
    made = pending_expr.STATS["materialised"]
    assert pending_expr.bare_constant(z._expr)
    assert pending_expr.STATS["materialised"] == made


def _reference(arrays, steps: int):
    x, y, w1, w2 = [a.astype(np.float64) for a in arrays]
    for _ in range(steps):
        h = x @ w1
        r = np.maximum(h, 0)
        d = 2 * (r @ w2 - y)
        g2 = r.T @ d
        g1 = x.T @ ((d @ w2.T) * (h > 0))
        w1, w2 = w1 - 1e-4 * g1, w2 - 1e-4 * g2
    return [w1, w2]


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 9), d_in=st.integers(1, 7), h=st.integers(1, 6),
       d_out=st.integers(1, 4), read_every=st.integers(2, 4), seed=st.integers(0, 99))
def test_values_equal_the_loop_without_reads_and_with_none(n, d_in, h, d_out, read_every,
                                                          seed):
    arrays = _arrays(n, d_in, h, d_out, seed)
    step_capture.reset()
    _, read, _ = two_layer(arrays, 7, read_every=read_every)
    _, unread, _ = two_layer(arrays, 7)
    _, none, _ = two_layer(arrays, 7, read_every=read_every, reset="none")
    for a, b, c, want in zip(read, unread, none, _reference(arrays, 7)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_allclose(a, want, rtol=1e-4, atol=1e-4)
