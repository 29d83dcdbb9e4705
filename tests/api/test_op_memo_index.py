"""index_select (and so F.embedding) replayed from its op_memo template: the recorded graph
is the body's whatever the index values, the guard raises the body's IndexError for an
out-of-range value (negatives too: PyTorch does not count them from the end here) before
every replay, and values and
gradients are bitwise the body's (and match finite differences in float64)."""

import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.gradcheck import numeric_grad
from tracer import op_memo

F = gj.nn.functional


def _run(memo: bool, table: np.ndarray, indices: list) -> list:
    """Embedding lookups of each index list, with their losses and the table's gradient."""
    with pytest.MonkeyPatch.context() as patch:
        if not memo:
            patch.setattr(op_memo, "key_of", lambda fn, args, kwargs: None)
        w = gj.tensor(table, requires_grad=True)
        out = []
        for idx in indices:
            w.grad = None
            i = gj.tensor(np.array(idx, np.int64))
            rows = F.embedding(i, w) + gj.index_select(w, 0, i.reshape(-1)).sum()
            loss = (rows * rows).sum()
            loss.backward()
            out.append((rows.detach().numpy().tobytes(), w.grad.numpy().tobytes()))
        return out


def test_embedding_lookups_replay_bitwise():
    table = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32)
    indices = [[[0, 1], [6, 2]], [[3, 3], [1, 0]], [[6, 2], [0, 6]], [[5, 4], [0, 0]]]
    before = op_memo.STATS["replays"]
    memo = _run(True, table, indices)
    assert op_memo.STATS["replays"] - before >= 6      # both lookups, from the second call
    assert memo == _run(False, table, indices)


@pytest.mark.parametrize("bad, value", [([0, 7], 7), ([-8, 1], -8), ([2, -1], -1)])
def test_the_guard_raises_the_bodys_error_before_a_replay(bad, value):
    w = gj.tensor(np.ones((7, 2), np.float32), requires_grad=True)
    for _ in range(3):
        F.embedding(gj.tensor([1, 2]), w).sum().backward()
    message = f"index {value} is out of bounds for dimension 0 with size 7"
    with pytest.raises(IndexError, match=re.escape(message)):
        F.embedding(gj.tensor(bad), w)
    with pytest.raises(IndexError, match=re.escape(message)):
        gj.index_select(w, 0, gj.tensor(bad))
    with pytest.raises(IndexError, match=re.escape(message)):       # a pending index
        gj.index_select(w, 0, gj.tensor([0, 0]) + gj.tensor(bad))
    # the error names the user's line, as the body's does
    try:
        gj.index_select(w, 0, gj.tensor(bad))
    except IndexError as e:
        assert "test_op_memo_index.py" in str(e)


@pytest.mark.parametrize("memo", [True, False])
def test_negative_indices_raise_as_pytorch(memo):
    """PyTorch 2.13: F.embedding(tensor([-1]), w) and index_select(w, 0, tensor([-1])) raise
    IndexError ("index out of range in self"); w[tensor([-1])] counts from the end."""
    table = np.arange(21, dtype=np.float32).reshape(7, 3)
    with pytest.MonkeyPatch.context() as patch:
        if not memo:
            patch.setattr(op_memo, "key_of", lambda fn, args, kwargs: None)
        w = gj.tensor(table)
        for _ in range(3):                          # the later calls replay, when memo
            F.embedding(gj.tensor([1, 6]), w)
        for call in (lambda i: F.embedding(i, w), lambda i: gj.index_select(w, 0, i)):
            with pytest.raises(IndexError, match="index -1 is out of bounds"):
                call(gj.tensor([0, -1]))
        np.testing.assert_array_equal(w[gj.tensor([-1])].numpy(), table[[-1]])


def test_index_select_gradient_matches_finite_differences_float64():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((5, 4))
    idx = gj.tensor([4, 4, 0, 2, 2])
    for _ in range(3):                        # the later calls replay the template
        w = gj.tensor(base, requires_grad=True)
        (gj.index_select(w, 0, idx) ** 3).sum().backward()
    numeric = numeric_grad(
        lambda a: float((gj.index_select(gj.tensor(a), 0, idx) ** 3).sum().item()), base)
    np.testing.assert_allclose(w.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 4), dim=st.sampled_from([0, 1, -1]),
       picks=st.lists(st.integers(0, 5), min_size=1, max_size=6))
def test_random_index_selects_are_the_bodys(rows, cols, dim, picks):
    size = (rows, cols)[dim]
    picks = [p for p in picks if p < size] or [0]
    table = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)
    want = np.take(table, np.array(picks), axis=dim)
    for _ in range(2):
        got = gj.index_select(gj.tensor(table), dim, gj.tensor(picks)).numpy()
        np.testing.assert_array_equal(got, want)
