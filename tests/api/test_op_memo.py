"""Replayed op templates (tracer/op_memo.py) record exactly what the op's body records."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.memo_check import assert_replay_matches_body
from tracer import op_memo


@pytest.fixture
def no_memo(monkeypatch):
    def off():
        monkeypatch.setattr(op_memo, "key_of", lambda fn, args, kwargs: None)
    return off


_CALLS = {
    "mul scalar": lambda a, b: a * 2.5,
    "rmul int": lambda a, b: 3 * a,
    "add bcast": lambda a, b: a + b[0],
    "sub alpha": lambda a, b: gj.sub(a, b, alpha=2),
    "div": lambda a, b: a / (b * b + 1.0),
    "pow": lambda a, b: a ** 3 + a ** 0.5,
    "clamp": lambda a, b: a.clamp(min=-0.5, max=0.5),
    "relu": lambda a, b: gj.relu(a - b),
    "sum mean": lambda a, b: a.sum(1, keepdim=True) + b.mean((0, 1)),
    "mse": lambda a, b: gj.nn.functional.mse_loss(a, b, reduction="sum"),
    "linear": lambda a, b: gj.nn.functional.linear(a, b, b.sum(1)),
    "mm": lambda a, b: a.t().mm(b),
    "square alias": lambda a, b: a * a - b * b,
    "matmul dot": lambda a, b: gj.matmul(a[0], b[0]) * a,
    "matmul mv": lambda a, b: gj.matmul(a, b[0]) + a.sum(1),
    "matmul squeeze": lambda a, b: gj.matmul(a[0], b.t()) + b.sum(0)[0],
    "matmul batched": lambda a, b: gj.matmul(a.reshape(1, *a.shape), b.t()).sum(0),
    "squeeze": lambda a, b: a.sum(0, keepdim=True).squeeze(0) * b[0],
}


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(_CALLS)), st.integers(1, 4), st.integers(3, 5),
       st.sampled_from([np.float32, np.float64]), st.booleans())
def test_replay_records_the_same_graph_and_values(name, n, m, dtype, grad):
    rng = np.random.default_rng(n * 10 + m)
    arrays = [rng.standard_normal((n, m)).astype(dtype) for _ in range(2)]
    assert_replay_matches_body(_CALLS[name], arrays, grad)


def test_second_call_replays_and_aliasing_is_part_of_the_key():
    x = gj.tensor([1.0, 2.0, 3.0])
    y = gj.tensor([4.0, 5.0, 6.0])
    x * x
    before = op_memo.STATS["replays"]
    np.testing.assert_array_equal((x * x).numpy(), [1.0, 4.0, 9.0])
    assert op_memo.STATS["replays"] == before + 1
    # same types as x * x, but two values: not the template of x * x
    np.testing.assert_array_equal((x * y).numpy(), [4.0, 10.0, 18.0])
    np.testing.assert_array_equal((y * x).numpy(), [4.0, 10.0, 18.0])


def test_matmul_of_every_rank_replays():
    v, m = gj.tensor([1.0, 2.0]), gj.tensor([[1.0, 2.0], [3.0, 4.0]])
    for a, b, want in ((v, v, 5.0), (m, v, [5.0, 11.0]), (v, m, [7.0, 10.0])):
        gj.matmul(a, b)
        before = op_memo.STATS["replays"]
        np.testing.assert_array_equal(gj.matmul(a, b).numpy(), want)
        assert op_memo.STATS["replays"] == before + 1


def test_scalar_values_and_kinds_are_part_of_the_key():
    x = gj.tensor([1.0, 2.0])
    np.testing.assert_array_equal((x * 2.0).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal((x * 3.0).numpy(), [3.0, 6.0])
    i = gj.tensor([1, 2])
    assert (i * 2).dtype == gj.int64 and (i * 2.0).dtype == gj.float32
    assert (i * True).dtype == gj.int64
    np.testing.assert_array_equal((x * -0.0).numpy(), [-0.0, -0.0])
    assert np.signbit((x * -0.0).numpy()).all() and not np.signbit((x * 0.0).numpy()).any()


def test_default_dtype_is_part_of_the_key():
    i = gj.tensor([1, 2])
    assert (i * 0.5).dtype == gj.float32
    gj.set_default_dtype(gj.float64)
    try:
        assert (i * 0.5).dtype == gj.float64
    finally:
        gj.set_default_dtype(gj.float32)
    assert (i * 0.5).dtype == gj.float32


def test_cross_entropy_replay_still_checks_target_bounds():
    logits = gj.tensor(np.zeros((3, 4), np.float32), requires_grad=True)
    good = gj.tensor([0, 3, 1])
    for _ in range(3):
        gj.nn.functional.cross_entropy(logits, good).backward()
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        gj.nn.functional.cross_entropy(logits, gj.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match="Target -2 is out of bounds"):
        gj.nn.functional.nll_loss(logits, gj.tensor([0, -2, 1]))
    # ignore_index given by keyword is honoured by the check
    value = gj.nn.functional.cross_entropy(logits, gj.tensor([0, 7, 1]), ignore_index=7)
    np.testing.assert_allclose(value.item(), np.log(4.0), rtol=1e-6)


def test_shape_errors_are_raised_on_every_call():
    a, b = gj.tensor(np.ones((2, 3))), gj.tensor(np.ones((4, 5)))
    for _ in range(2):
        with pytest.raises(Exception, match="cannot be"):
            a + b


def test_traced_calls_do_not_use_templates():
    x = gj.tensor([1.0, 2.0])
    x * 2.0
    x * 2.0
    before = op_memo.STATS["replays"]
    f = gj.jit(lambda t: t * 2.0)
    np.testing.assert_array_equal(f(x).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(gj.grad(lambda t: (t * 2.0).sum())(x).numpy(), [2.0, 2.0])
    assert op_memo.STATS["replays"] == before


def test_an_op_returning_its_argument_returns_the_same_tensor():
    """`x.sum(())`-like no-ops and casts that return the argument keep identity."""
    w = gj.tensor([[1.0, 2.0]], requires_grad=True)
    for _ in range(3):
        y = gj.nn.functional.mse_loss(w, w.detach() + 1.0, reduction="none")
        y.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 3 * -2.0 * np.ones((1, 2)))


def test_in_place_update_between_calls_is_seen():
    w = gj.tensor([1.0, 2.0])
    outs = []
    for _ in range(3):
        outs.append((w * 2.0).numpy().copy())
        w.add_(1.0)
    np.testing.assert_array_equal(np.array(outs), [[2, 4], [4, 6], [6, 8]])
