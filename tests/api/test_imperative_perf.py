"""A training loop's later steps do no tracing or compiling work: checked with counters.

Counted: backward programs emitted vs replayed (tracer/autograd/replay.py),
ir.autodiff differentiations of the per-node local Functions (the VJP cache's misses),
optimizer update programs traced, the runtime's compiles, and stack walks for user
locations made by the autograd recorder (the outermost op already made one).
"""

import logging
import os

import numpy as np
import pytest

import gradjit as gj
from runtime import config
import tracer.autograd.recording as recording
import tracer.optim.base as optim_module
from tracer.autograd import replay
from tracer.autograd.emitter import VJP_STATS


def _compiles() -> int | None:
    if config.backend() == "interpret":
        return None
    import runtime
    return runtime.cache_info()["compiles"]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = gj.tensor(rng.standard_normal((16, 6)).astype(np.float32))
    y = gj.tensor(rng.integers(0, 3, 16))
    gj.manual_seed(seed)
    model = gj.nn.Sequential(gj.nn.Linear(6, 12), gj.nn.ReLU(), gj.nn.Linear(12, 3))
    return x, y, model


def test_later_steps_differentiate_trace_and_compile_nothing(monkeypatch):
    x, y, model = _problem()
    opt = gj.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    criterion = gj.nn.CrossEntropyLoss()
    traced = []
    original = optim_module.executable
    monkeypatch.setattr(optim_module, "executable", lambda fn: traced.append(fn) or original(fn))
    counts, losses = [], []
    for _ in range(12):
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        counts.append((replay.STATS["misses"], VJP_STATS["misses"], len(traced),
                       _compiles(), VJP_STATS["hits"]))
        if len(counts) == 3:
            replayed = replay.STATS["hits"]
    # nothing emitted, differentiated, traced or compiled after the first steps; the
    # backward program is replayed (not even the cached VJPs are looked up again)
    assert counts[2:] == [counts[2]] * (len(counts) - 2)
    assert replay.STATS["hits"] - replayed == len(counts) - 3
    assert losses[-1] < losses[0]


def _grads_of_steps(steps: int, use_replay: bool, monkeypatch):
    if not use_replay:
        monkeypatch.setattr(replay, "lookup", lambda walk: None)
    x, y, model = _problem(seed=3)
    opt = gj.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        gj.nn.functional.cross_entropy(model(x), y).backward()
        out.append([p.grad.numpy().copy() for p in model.parameters()])
        opt.step()
    monkeypatch.undo()
    return out


def test_replayed_steps_compute_what_emitted_steps_compute(monkeypatch):
    replayed = _grads_of_steps(4, True, monkeypatch)
    emitted = _grads_of_steps(4, False, monkeypatch)
    for a, b in zip(replayed, emitted):
        for ga, gb in zip(a, b):
            np.testing.assert_array_equal(ga, gb)


def test_a_changed_structure_is_emitted_again():
    """A different batch size is a different program; both stay cached and correct."""
    w = gj.tensor(np.arange(6, dtype=np.float32).reshape(3, 2), requires_grad=True)
    for n in (4, 5, 4, 5):
        x = np.ones((n, 3), np.float32) * np.arange(1, n + 1, dtype=np.float32)[:, None]
        w.grad = None
        ((gj.tensor(x) @ w) ** 2).sum().backward()
        expected = 2 * x.T @ (x @ w.detach().numpy())
        np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-5)


def test_a_replayed_step_still_checks_saved_versions():
    a = gj.tensor([1.0, 2.0], requires_grad=True)

    def loss_and_saved():
        c = (a * 1.0).exp()
        return c.sum(), c

    for _ in range(3):
        loss_and_saved()[0].backward()
    before = replay.STATS["hits"]
    loss_and_saved()[0].backward()
    assert replay.STATS["hits"] == before + 1
    np.testing.assert_allclose(a.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)
    loss, c = loss_and_saved()
    with gj.no_grad():
        c.mul_(2.0)                     # exp saved its output
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_recorder_reuses_the_op_location(monkeypatch):
    """on_op takes the location the outermost op computed: no second stack walk."""
    walks = []
    monkeypatch.setattr(recording, "user_location", lambda: walks.append(1) or "elsewhere:0")
    w = gj.tensor([1.0, 2.0], requires_grad=True)
    y = (w * 3.0).sum()                           # the line the nodes must name
    assert walks == []
    here = f"{os.path.basename(__file__)}:"
    assert y.grad_fn.loc.startswith(here)
    assert y.grad_fn.next_functions[0][0].loc == y.grad_fn.loc


def test_changing_the_learning_rate_changes_the_step_not_the_program(monkeypatch):
    """The optimizer's hyperparameters are inputs of its compiled update."""
    traced = []
    original = optim_module.executable
    monkeypatch.setattr(optim_module, "executable", lambda fn: traced.append(fn) or original(fn))
    w = gj.tensor([1.0, -2.0], requires_grad=True)
    opt = gj.optim.SGD([w], lr=0.5)
    for lr in (0.5, 0.25, 0.125):
        opt.param_groups[0]["lr"] = lr
        opt.zero_grad()
        (w * w).sum().backward()                    # grad = 2 w
        before = w.detach().numpy().copy()
        opt.step()
        np.testing.assert_allclose(w.detach().numpy(), before * (1 - 2 * lr), rtol=1e-6)
    assert len(traced) == 1


def test_gradjit_log_says_why_a_backward_is_not_replayed(gradjit_env, caplog):
    gradjit_env("GRADJIT_LOG", "1")
    caplog.set_level(logging.INFO, logger="gradjit")
    replay.clear()
    w = gj.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    assert "backward replay: new graph structure" in caplog.text
    h = w * 2.0
    h.register_hook(lambda g: g * 1.0)
    h.sum().backward()
    assert "backward replay off for this call: MulBackward0 has a tensor hook" in caplog.text
