"""Reads of a pending graph whose structure was read before rerun the kept program
(tracer/realize_plans.py): counted, and equal to building the program again."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from runtime import config
from tracer import realize_plans


def _compiles():
    if config.backend() == "interpret":
        return None
    import runtime
    return runtime.cache_info()["compiles"]


def test_a_loop_reading_its_loss_reruns_one_program():
    x = gj.linspace(-1.0, 1.0, 50)
    w = gj.tensor([0.5, -0.25])
    values = []
    for step in range(6):
        loss = ((w[0] + w[1] * x - x ** 2) ** 2).sum()
        values.append(loss.item())
        with gj.no_grad():
            w -= 0.01 * gj.tensor([1.0, 1.0])
        if step == 2:
            hits, compiles = realize_plans.STATS["hits"], _compiles()
    assert realize_plans.STATS["hits"] - hits >= 3
    assert _compiles() == compiles
    ref = []
    xs = np.linspace(-1.0, 1.0, 50, dtype=np.float32)
    wv = np.array([0.5, -0.25], np.float32)
    for _ in range(6):
        ref.append(float(np.sum((wv[0] + wv[1] * xs - xs ** 2) ** 2, dtype=np.float32)))
        wv = wv - np.float32(0.01)
    np.testing.assert_allclose(values, ref, rtol=1e-5)


def _exprs(kind: int, a, b, c):
    s = a + b
    return [s * s, s * (b + c), (a + b) * (a + c), gj.exp(a) - b * c, (a * b).sum() * c][kind]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 3)), min_size=2, max_size=6))
def test_kept_programs_compute_what_new_programs_compute(reads):
    """Any order of structures and shapes, with sharing patterns that only the key's
    indices tell apart ((a+b)*(a+b) vs (a+b)*(b+c)): bitwise equal to no plans."""
    results = []
    for use in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not use:
                mp.setattr(realize_plans, "lookup", lambda walk: None)
            rng = np.random.default_rng(0)
            out = []
            for kind, n in reads:
                a, b, c = (gj.tensor(rng.standard_normal(n).astype(np.float32))
                           for _ in range(3))
                out.append(_exprs(kind, a, b, c).numpy().copy())
            results.append(out)
    for x, y in zip(*results):
        np.testing.assert_array_equal(x, y)


def test_reading_a_traced_value_still_raises():
    with pytest.raises(Exception, match="traced"):
        gj.jit(lambda t: (t * 2.0).item())(gj.tensor([1.0]))


# ---- a read keeps what the user holds of its graph (realize_plans.held) -----------------

def _products(rng, n=64, k=200, m=100):
    return gj.tensor(rng.standard_normal((n, k)).astype(np.float32)), \
        gj.tensor(rng.standard_normal((k, m)).astype(np.float32))


def test_a_read_keeps_a_large_product_the_user_holds():
    x, w = _products(np.random.default_rng(0))            # 64*100*200 >= 2**20 MACs
    h = x.mm(w)
    h.clamp(min=0).sum().item()
    assert h._expr.data is not None                        # computed along, not again later
    np.testing.assert_array_equal(h.numpy(), x.numpy() @ w.numpy())
    small = x[:, :10].mm(w[:10, :8])                       # below the threshold
    small.sum().item()
    assert small._expr.data is None


def test_a_read_does_not_keep_a_product_only_the_graph_uses(monkeypatch):
    kept = []
    find = realize_plans.held
    monkeypatch.setattr(realize_plans, "held",
                        lambda walk, candidates: kept.append(find(walk, candidates)) or kept[-1])
    x, w = _products(np.random.default_rng(1))
    x.mm(w).relu().sum().item()
    h = x.mm(w)
    h.relu().sum().item()
    assert [len(k) for k in kept] == [0, 1] and kept[1][0] is h._expr


def test_a_view_is_computed_at_a_read_only_while_something_holds_it(monkeypatch):
    kept = []
    find = realize_plans.held
    monkeypatch.setattr(realize_plans, "held",
                        lambda walk, candidates: kept.append(find(walk, candidates)) or kept[-1])
    x, g = gj.tensor(np.ones((3, 2), np.float32)), gj.tensor(np.ones((3, 4), np.float32))
    x.t().mm(g).sum().item()
    v = x.t()
    v.mm(g).sum().item()
    assert [len(k) for k in kept] == [0, 1] and v._expr.data is not None
    np.testing.assert_array_equal(v.numpy(), np.ones((2, 3), np.float32))


def _hand_written_steps(steps: int):
    rng = np.random.default_rng(2)
    x, w1 = _products(rng)
    w2 = gj.tensor(rng.standard_normal((100, 10)).astype(np.float32))
    y = gj.tensor(rng.standard_normal((64, 10)).astype(np.float32))
    losses = []
    for _ in range(steps):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        losses.append((y_pred - y).pow(2).sum().item())
        g = 2.0 * (y_pred - y)
        g_h = g.mm(w2.t()).clone()
        g_h[h < 0] = 0
        w1 -= 1e-5 * x.t().mm(g_h)
        w2 -= 1e-5 * h_relu.t().mm(g)
    return losses, w1.numpy(), w2.numpy()


def test_keeping_held_products_changes_no_bit(monkeypatch):
    kept = _hand_written_steps(5)
    monkeypatch.setattr(realize_plans, "HELD_PRODUCT_MACS", 1 << 62)
    again = _hand_written_steps(5)
    assert kept[0] == again[0]
    for a, b in zip(kept[1:], again[1:]):
        np.testing.assert_array_equal(a, b)


def test_a_kept_product_inside_an_autograd_graph_keeps_its_gradient():
    rng = np.random.default_rng(3)
    x, w = _products(rng)
    w.requires_grad_(True)
    h = x.mm(w)
    loss = h.tanh().sum()
    loss.item()
    loss.backward()
    want = x.numpy().T @ (1 - np.tanh(x.numpy() @ w.detach().numpy()) ** 2)
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-4, atol=1e-5)
