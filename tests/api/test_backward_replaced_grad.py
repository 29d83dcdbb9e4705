"""backward() does not compute, as results of their own, the pending values of old `.grad`s
it accumulates into in place (a `w.grad.zero_()` or `w.grad.mul_(c)` under no_grad): they
are read inside the sum, and the tensor then points at the sum. Checked: the program's
result count (counters), every step bitwise against the same loop computing them as before
and against the interpreter, the gradients against float64 finite differences, and what
users may still hold (a view of `.grad`, a pending value computed from the zeroed grad, a
second name for the grad tensor)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.gradcheck import numeric_grad
from tracer import tensor as tensor_module
from tracer.autograd import engine, replay

_FINISH = engine.Run.finish


def _finish_all(self, results, realize, replaced=()):
    """Run.finish computing every pending in-place value as a result (the former way)."""
    return _FINISH(self, results, realize, ())


def _weights(shapes, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * 0.5).astype(np.float32) for s in shapes]


def _two_layer(steps: int, n: int, d: int, h: int, o: int, scale: float | None,
               seed: int = 0, lr: float = 1e-3, read_every: int = 3) -> tuple[list, list]:
    """two_layer_net_autograd.py's loop: backward, then no_grad updates and grad.zero_()
    (or grad.mul_(scale)). Returns (the loss read every read_every steps, then the final
    weights and grads as arrays) and the result count of every backward program that ran.
    Nothing else is read between steps: a read computes the pending grads too."""
    x, y, a1, a2 = _weights(((n, d), (n, o), (d, h), (h, o)), seed)
    x, y = gj.tensor(x), gj.tensor(y)
    weights = [gj.tensor(a1, requires_grad=True), gj.tensor(a2, requires_grad=True)]
    counts, out = [], []
    run_function = engine.run_function

    def counted(fn, arrays):
        if fn.name == "backward":
            counts.append(len(fn.results))
        return run_function(fn, arrays)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "run_function", counted)
        for step in range(steps):
            w1, w2 = weights
            loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
            if step % read_every == 0:
                out.append(loss.item())
            loss.backward()
            with gj.no_grad():
                for w in weights:
                    w -= lr * w.grad
                    if scale is None:
                        w.grad.zero_()
                    else:
                        w.grad.mul_(scale)
    out += [t.detach().numpy().copy() for w in weights for t in (w, w.grad)]
    return out, counts


def _run(replaced: bool, *args, **kwargs):
    replay.clear()
    with pytest.MonkeyPatch.context() as patch:
        if not replaced:
            patch.setattr(engine.Run, "finish", _finish_all)
            # (and a zeroed grad computed like any other pending update: the former way)
            patch.setattr(tensor_module, "bare_constant", lambda e: False)
        return _two_layer(*args, **kwargs)


def _same(a: list, b: list):
    for u, v in zip(a, b, strict=True):
        assert np.asarray(u).tobytes() == np.asarray(v).tobytes()


@pytest.mark.parametrize("scale", [None, 0.5])
def test_old_grads_are_not_results(scale):
    new, new_counts = _run(True, 8, 6, 12, 5, 3, scale)
    old, old_counts = _run(False, 8, 6, 12, 5, 3, scale)
    _same(new, old)
    assert _saved(new_counts, old_counts) == _expected_saved(8, 3)
    assert replay.STATS["hits"] > 0


def _saved(new_counts: list, old_counts: list) -> list:
    assert len(new_counts) == len(old_counts)
    return [b - a for a, b in zip(new_counts, old_counts)]


def _expected_saved(steps: int, read_every: int) -> list:
    """Results fewer per backward: the first finds no .grad; a step that read its loss
    computed the pending grads with that read (they hold data); every other backward has
    two pending old grads (w1's, w2's) that were results of their own before."""
    return [0 if step == 0 or step % read_every == 0 else 2 for step in range(steps)]


def test_same_as_interpreter(gradjit_env):
    native, _ = _run(True, 6, 5, 9, 4, 3, None)
    gradjit_env("GRADJIT_BACKEND", "interpret")
    interpreted, _ = _run(True, 6, 5, 9, 4, 3, None)
    for u, v in zip(native, interpreted, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_accumulated_grad_against_finite_differences():
    """`.grad.mul_(0.5)` then backward: the new grad is 0.5 * old + d loss / d w (float64)."""
    rng = np.random.default_rng(3)
    x, a = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    w = gj.tensor(a, requires_grad=True)
    xt = gj.tensor(x)

    def loss_of(arr):
        return float(np.sum(np.tanh(x @ arr) ** 2))
    for _ in range(2):
        (xt.mm(w).tanh() ** 2).sum().backward()
    old = w.grad.numpy().copy()
    with gj.no_grad():
        w.grad.mul_(0.5)
    (xt.mm(w).tanh() ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 0.5 * old + numeric_grad(loss_of, a),
                               rtol=1e-7, atol=1e-9)


def test_what_users_hold_of_the_old_grad():
    """A view of .grad, a value computed from the zeroed grad and not read yet, and a
    second name for the grad tensor all see what they would have seen before."""
    x = gj.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    w = gj.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    (x.mm(w) ** 2).sum().backward()
    grad = w.grad
    row = grad[0]
    with gj.no_grad():
        grad.zero_()
    pending = grad.sum() + 1.0
    (x.mm(w) ** 2).sum().backward()
    assert w.grad is grad
    expected = 2 * x.numpy().T @ (x.numpy() @ np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(grad.numpy(), expected)
    np.testing.assert_array_equal(row.numpy(), expected[0])
    assert pending.item() == 1.0


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 9), d=st.integers(1, 12), h=st.integers(1, 10), o=st.integers(1, 4),
       steps=st.integers(2, 6), scale=st.sampled_from([None, 0.0, 0.5, -2.0]),
       read_every=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_any_shapes_bitwise_as_before(n, d, h, o, steps, scale, read_every, seed):
    kwargs = dict(seed=seed, read_every=read_every)
    new, new_counts = _run(True, steps, n, d, h, o, scale, **kwargs)
    old, old_counts = _run(False, steps, n, d, h, o, scale, **kwargs)
    _same(new, old)
    assert _saved(new_counts, old_counts) == _expected_saved(steps, read_every)
