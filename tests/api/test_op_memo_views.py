"""The view ops (reshape/view/flatten/einsum, permute, transpose, split, chunk) replay from
op_memo templates: the same graph, bits and gradients as their bodies; a replayed view still
shares its base's storage (in-place ops through either side), and its node is walk-free."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.memo_check import assert_replay_matches_body
from tests.api.test_op_memo_norm import norm_steps
from tests.api.test_walkfree_key import _assert_same, _delta, _stats
from tracer import op_memo
from tracer.autograd import follow

_CALLS = {
    "reshape": lambda a, w: a.reshape(-1, a.shape[-1]) * 2.0,
    "view": lambda a, w: a.view(a.shape[0] * a.shape[1], a.shape[2]) + w,
    "view size kw": lambda a, w: a.view(size=(a.shape[0], -1)),
    "flatten": lambda a, w: a.flatten(1),
    "unflatten": lambda a, w: gj.unflatten(a, 2, (1, a.shape[2])) * 3.0,
    "permute": lambda a, w: a.permute(2, 0, 1) * w[:, None, None],
    "movedim": lambda a, w: gj.movedim(a, 0, -1),
    "transpose": lambda a, w: a.transpose(0, 2),
    "mT": lambda a, w: a.mT + 1.0,
    "split": lambda a, w: a.split(2, -1)[0] * 2.0,
    "split sizes": lambda a, w: a.split((1, a.shape[2] - 1), -1)[1],
    "chunk": lambda a, w: a.chunk(2, 0)[-1],
    "einsum": lambda a, w: gj.einsum("knm,m->kn", a, w),
}


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(_CALLS)), st.integers(1, 3), st.integers(1, 4),
       st.integers(2, 5), st.sampled_from([np.float32, np.float64]), st.booleans())
def test_replay_is_the_bodys_graph_values_and_gradients(name, k, n, m, dtype, grad):
    rng = np.random.default_rng(k * 100 + n * 10 + m)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((k, n, m), (m,))]
    assert_replay_matches_body(_CALLS[name], arrays, grad, lambda out: (out * out).sum())


def _inplace_through_views():
    base = np.arange(12.0).reshape(3, 4)
    a = gj.tensor(base.copy())
    v = a.view(-1)
    v.mul_(2.0)                               # through the view: the base changes
    t = a.transpose(0, 1)
    a.add_(1.0)                               # through the base: the view changes
    first, _ = a.split(2, 0)
    first.zero_()
    x = gj.tensor(base.copy(), requires_grad=True)
    y = x * 1.0
    y.permute(1, 0).mul_(3.0)
    (y * y).sum().backward()
    return [a.numpy().copy(), v.numpy().copy(), t.numpy().copy(), x.grad.numpy().copy()]


def test_replayed_views_share_their_base_storage():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(op_memo, "key_of", lambda fn, args, kwargs: None)
        want = _inplace_through_views()
    want_a = np.arange(12.0).reshape(3, 4) * 2.0 + 1.0
    want_a[:2] = 0.0
    np.testing.assert_array_equal(want[0], want_a)
    np.testing.assert_array_equal(want[3], 18.0 * np.arange(12.0).reshape(3, 4))
    for _ in range(2):                        # learning the templates, then replaying them
        before = op_memo.STATS["replays"]
        got = _inplace_through_views()
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    assert op_memo.STATS["replays"] >= before + 4


def _view_head(x, w, g, b):
    h = x.mm(w).view(5, 2, 3).transpose(1, 2).reshape(5, 6)
    return gj.nn.functional.layer_norm(h, (6,), g, b)


def test_view_nodes_are_keyed_walk_free(monkeypatch):
    monkeypatch.setattr(follow, "ENABLED", False)   # every backward keyed (follow.py)
    op_memo.clear()
    before = _stats()
    walkfree = norm_steps("walkfree", head=_view_head)
    d = _delta(before)
    # per step: Mm, View, Transpose, View, NativeLayerNorm, Softmax, Mul, Sum
    assert d["keys"] == 4 and d["ruled_out"] == 0 and d["hits"] == 3
    assert d["nodes"] == 4 * 8
    _assert_same(walkfree, norm_steps("walk", head=_view_head))
    _assert_same(walkfree, norm_steps("emit", head=_view_head))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(op_memo, "key_of", lambda fn, args, kwargs: None)
        _assert_same(walkfree, norm_steps("emit", head=_view_head))
