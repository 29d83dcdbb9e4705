"""layer_norm (one NativeLayerNorm op), softmax/log_softmax and the float unaries replay
from op_memo templates: the same graph, bits and gradients as their bodies, and their
autograd nodes are keyed walk-free (tracer/autograd/node_walk.py)."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.memo_check import assert_replay_matches_body
from tests.api.test_walkfree_key import _assert_same, _delta, _stats
from tests.gradcheck import numeric_grad
from tracer import op_memo
from tracer.autograd import follow, node_walk, replay

F = gj.nn.functional

_CALLS = {
    "layer_norm affine": lambda a, w, b: F.layer_norm(a, (a.shape[-1],), w, b),
    "layer_norm weight": lambda a, w, b: F.layer_norm(a, a.shape[-1], w, eps=1e-3),
    "layer_norm 2 dims": lambda a, w, b: F.layer_norm(a, tuple(a.shape[-2:])) * w,
    "layer_norm module": lambda a, w, b: _module(a.shape[-1], a.dtype)(a) + b,
    "softmax": lambda a, w, b: F.softmax(a, -1) * w,
    "softmax dim 0": lambda a, w, b: gj.softmax(a, 0) + b,
    "log_softmax": lambda a, w, b: F.log_softmax(a * w, dim=1),
    "exp log": lambda a, w, b: (a.exp() + w * w).log(),
    "sqrt rsqrt": lambda a, w, b: (a * a + 1.0).sqrt() * gj.rsqrt(b * b + 2.0),
    "tanh sigmoid": lambda a, w, b: a.tanh() + gj.sigmoid(a * w),
}

_MODULES: dict = {}


def _module(n, dtype):
    """One LayerNorm per size, parameters not requiring grad (weights 1, biases 0)."""
    if (n, dtype) not in _MODULES:
        m = gj.nn.LayerNorm(n)
        if dtype == gj.float64:
            m = m.double()
        m.requires_grad_(False)
        for p in m.parameters():
            p.numpy()                          # realised: a leaf in every call's graph
        _MODULES[n, dtype] = m
    return _MODULES[n, dtype]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(_CALLS)), st.integers(1, 3), st.integers(1, 4),
       st.integers(2, 5), st.sampled_from([np.float32, np.float64]), st.booleans())
def test_replay_is_the_bodys_graph_values_and_gradients(name, k, n, m, dtype, grad):
    rng = np.random.default_rng(k * 100 + n * 10 + m)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((k, n, m), (m,), (m,))]
    assert_replay_matches_body(_CALLS[name], arrays, grad)


def test_layer_norm_is_one_node_as_pytorchs():
    x = gj.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w = gj.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for _ in range(2):                        # body, then replay
        before = op_memo.STATS["replays"]
        out = F.layer_norm(x, (3,), w, w)
        assert out.grad_fn.name() == "NativeLayerNormBackward0"
        assert {type(f).__name__ for f, _ in out.grad_fn.next_functions} == {"AccumulateGrad"}
    assert op_memo.STATS["replays"] == before + 1


def test_layer_norm_saves_its_input_as_pytorch():
    """PyTorch's NativeLayerNormBackward0 keeps the input: changing it in place is an error
    at backward (the composite ops before kept only the centred values)."""
    x = gj.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    for _ in range(2):
        y = x * 1.0
        out = F.layer_norm(y, (3,))
        y.mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()


def test_replayed_layer_norm_gradients_match_finite_differences_f64():
    rng = np.random.default_rng(3)
    xv, wv, bv = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal(5)
    c = rng.standard_normal((3, 5))

    def loss(xa, wa, ba):
        out = F.layer_norm(gj.tensor(xa), (5,), gj.tensor(wa), gj.tensor(ba), 1e-5)
        return float((F.softmax(out, -1) * gj.tensor(c)).sum().item())

    for _ in range(3):                        # the last call replays every op
        ts = [gj.tensor(v, requires_grad=True) for v in (xv, wv, bv)]
        out = F.layer_norm(ts[0], (5,), ts[1], ts[2], 1e-5)
        before = op_memo.STATS["replays"]
        total = (F.softmax(out, -1) * gj.tensor(c)).sum()
        grads = [g.numpy() for g in gj.autograd.grad(total, ts)]
    assert op_memo.STATS["replays"] >= before + 3
    vals = [xv, wv, bv]
    for i, v in enumerate(vals):
        fd = numeric_grad(lambda a, i=i: loss(*vals[:i], a, *vals[i + 1:]), v)
        np.testing.assert_allclose(grads[i], fd, rtol=1e-6, atol=1e-8)


def test_a_replayed_implicit_dim_warns_as_the_body():
    x = gj.tensor(np.ones((2, 3), np.float32))
    for fn in (gj.softmax, gj.log_softmax):
        for _ in range(2):
            before = op_memo.STATS["replays"]
            with pytest.warns(UserWarning, match="Implicit dimension choice"):
                out = fn(x)
        assert op_memo.STATS["replays"] == before + 1
        assert out.shape == (2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gj.softmax(x, 1)
        gj.softmax(x, 1)


def _norm_head(x, w, g, b):
    return F.layer_norm(x.mm(w), (6,), g, b)


def norm_steps(mode: str, steps: int = 4, head=_norm_head) -> list:
    """head(x, w, g, b), softmax, trained by SGD; mode as test_walkfree_key._loop."""
    replay.clear()
    with pytest.MonkeyPatch.context() as patch:
        if mode != "walkfree":
            patch.setattr(node_walk, "add_stops", lambda *args: False)
        if mode == "emit":
            patch.setattr(replay, "lookup", lambda walk: None)
        rng = np.random.default_rng(1)
        w = gj.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
        g = gj.tensor(np.ones(6, np.float32), requires_grad=True)
        b = gj.tensor(np.zeros(6, np.float32), requires_grad=True)
        x = gj.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        c = gj.tensor(rng.standard_normal((5, 6)).astype(np.float32))
        opt = gj.optim.SGD([w, g, b], lr=0.1)
        out = []
        for _ in range(steps):
            opt.zero_grad()
            h = head(x, w, g, b)
            loss = (F.softmax(h, -1) * c).sum()
            loss.backward()
            opt.step()
            out.append((loss.item(), [p.detach().numpy().copy() for p in (w, g, b)],
                        [p.grad.numpy().copy() for p in (w, g, b)]))
        return out


def test_layer_norm_and_softmax_nodes_are_keyed_walk_free(monkeypatch):
    monkeypatch.setattr(follow, "ENABLED", False)   # every backward keyed (follow.py)
    op_memo.clear()
    before = _stats()
    walkfree = norm_steps("walkfree")
    d = _delta(before)
    # per step: Mm, NativeLayerNorm, Softmax, Mul, Sum; every step keyed by its templates
    assert d["keys"] == 4 and d["ruled_out"] == 0 and d["hits"] == 3
    assert d["nodes"] == 4 * 5
    _assert_same(walkfree, norm_steps("walk"))
    _assert_same(walkfree, norm_steps("emit"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(op_memo, "key_of", lambda fn, args, kwargs: None)
        _assert_same(walkfree, norm_steps("emit"))        # the bodies, op by op
