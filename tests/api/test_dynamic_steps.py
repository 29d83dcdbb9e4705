"""Steps whose graph takes one of a few shapes (pytorch/tutorials' dynamic_net.py): after
each shape has been seen, a step traces, differentiates and compiles nothing (counters, not
timings), and computes what a step built from scratch computes."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import tracer.optim.base as optim_module
from runtime import config
from tracer.autograd import replay
from tracer.autograd.emitter import VJP_STATS


def _compiles() -> int | None:
    if config.backend() == "interpret":
        return None
    import runtime
    return runtime.cache_info()["compiles"]


def _counters(traced: list) -> tuple:
    return (replay.STATS["misses"], VJP_STATS["misses"], len(traced), _compiles())


def _mlp_net(seed: int):
    """dynamic_net's first shape: a middle layer reused `depth` times."""
    rng = np.random.default_rng(seed)
    layers = [gj.nn.Linear(5, 8), gj.nn.Linear(8, 8), gj.nn.Linear(8, 3)]
    params = [p for layer in layers for p in layer.parameters()]
    with gj.no_grad():
        for p in params:
            p.copy_(gj.tensor((rng.standard_normal(p.shape) * 0.3).astype(np.float32)))
    x = gj.tensor(rng.standard_normal((6, 5)).astype(np.float32))
    y = gj.tensor(rng.standard_normal((6, 3)).astype(np.float32))
    opt = gj.optim.SGD(params, lr=1e-2, momentum=0.9)

    def step(depth: int, read: bool = False):
        hidden = layers[0](x).clamp(min=0)
        for _ in range(depth):
            hidden = layers[1](hidden).clamp(min=0)
        loss = (layers[2](hidden) - y).pow(2).sum()
        value = loss.item() if read else None
        opt.zero_grad()
        loss.backward()
        opt.step()
        return value
    return step, params


def _poly_net(seed: int):
    """dynamic_net.py itself: a cubic plus e * x**4 (and e * x**5), drawn per step."""
    rng = np.random.default_rng(seed)
    coefs = [gj.nn.Parameter(gj.tensor(np.float32(v))) for v in rng.standard_normal(5)]
    x = gj.linspace(-np.pi, np.pi, 200)
    y = gj.sin(x)
    opt = gj.optim.SGD(coefs, lr=1e-6, momentum=0.9)
    criterion = gj.nn.MSELoss(reduction="sum")

    def step(extra: int, read: bool = False):
        a, b, c, d, e = coefs
        pred = a + b * x + c * x ** 2 + d * x ** 3
        for exp in range(4, 4 + extra):
            pred = pred + e * x ** exp
        loss = criterion(pred, y)
        value = loss.item() if read else None
        opt.zero_grad()
        loss.backward()
        opt.step()
        return value
    return step, coefs


def _traced(monkeypatch) -> list:
    traced = []
    original = optim_module.executable
    monkeypatch.setattr(optim_module, "executable", lambda fn: traced.append(fn) or original(fn))
    return traced


def _check_no_work_after_warmup(monkeypatch, make, shapes, reads):
    traced = _traced(monkeypatch)
    step, _ = make(0)
    for read in reads:                   # every shape, with and without a read of the loss
        for _ in range(2):               # first with empty momentum buffers, then steady
            for s in shapes:
                step(s, read)
    before = _counters(traced)
    hits = replay.STATS["hits"]
    order = np.random.default_rng(1).choice(shapes, 24)
    for i, s in enumerate(order):
        step(int(s), reads[i % len(reads)])
        assert _counters(traced) == before, f"step {i} (shape {s}) did new work"
    assert replay.STATS["hits"] - hits == len(order)


def test_mlp_of_random_depth_compiles_nothing_after_each_depth_is_seen(monkeypatch):
    _check_no_work_after_warmup(monkeypatch, _mlp_net, [0, 1, 2, 3], [False, True])


def test_dynamic_net_tutorial_compiles_nothing_after_each_shape_is_seen(monkeypatch):
    _check_no_work_after_warmup(monkeypatch, _poly_net, [0, 1, 2], [False, True])


def _run(make, shapes, use_replay: bool) -> list:
    with pytest.MonkeyPatch.context() as mp:
        if not use_replay:
            mp.setattr(replay, "lookup", lambda walk: None)
        step, params = make(3)
        out = []
        for i, s in enumerate(shapes):
            step(int(s), i % 3 == 2)
            out.append([p.detach().numpy().copy() for p in params])
    return out


@settings(max_examples=6, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=3, max_size=8))
def test_replayed_random_depth_steps_equal_emitted_ones(shapes):
    """Bitwise: replay binds the same program to the new arrays, in any order of shapes."""
    replayed = _run(_mlp_net, shapes, True)
    emitted = _run(_mlp_net, shapes, False)
    for a, b in zip(replayed, emitted):
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa, pb)


def test_dynamic_net_tutorial_matches_numpy_float64():
    """The tutorial's steps against a float64 NumPy re-implementation (hand-written
    gradients, PyTorch's SGD momentum: a parameter without a gradient is skipped, its
    buffer starts as its first gradient), replayed steps included."""
    step, coefs = _poly_net(5)
    ref = np.random.default_rng(5).standard_normal(5).astype(np.float32).astype(np.float64)
    x = np.linspace(-np.pi, np.pi, 200, dtype=np.float32).astype(np.float64)
    y = np.sin(x)
    bufs = [None] * 5
    for i, extra in enumerate([0, 2, 1, 2, 0, 1, 1, 2, 0, 0, 2, 1]):
        step(extra, i % 4 == 3)
        powers = [x ** k for k in range(4)] + [sum(x ** k for k in range(4, 4 + extra))]
        pred = sum(c * p for c, p in zip(ref[:4], powers)) + (ref[4] * powers[4] if extra
                                                              else 0.0)
        for k in range(5 if extra else 4):
            g = np.sum(2 * (pred - y) * powers[k])
            bufs[k] = g if bufs[k] is None else 0.9 * bufs[k] + g
            ref[k] -= 1e-6 * bufs[k]
        got = np.array([float(c.item()) for c in coefs])
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
