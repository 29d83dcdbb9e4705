"""The bounded tier's per-call savings on time_sequence_prediction's shape (two LSTMCells
and a Linear stepped in Python), each checked against the path it bypasses (bitwise),
with counters showing it was taken and the cases that must not take it."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tests.examples.test_long_loops_speed import _assert_bitwise, _data, _lower_bounds, _run
from tracer import bounded, realize_plans


@pytest.fixture
def low_bounds(monkeypatch):
    _lower_bounds(monkeypatch, 16)


@pytest.mark.parametrize("dtype", [gj.float32, gj.float64], ids=["f32", "f64"])
def test_moves_of_earlier_values_are_shared_within_a_read(dtype, low_bounds, monkeypatch):
    """Every step broadcasts the same biases and transposes the same weights: done once per
    read. The slices of each step's gates (values computed in the read) are not shared."""
    x, y = _data(5, 12)
    before, ops = bounded.STATS["moves_shared"], bounded.STATS["ops"]
    fast = _run(x, y, 4, dtype)
    shared = bounded.STATS["moves_shared"] - before
    # 2 cells x (2 broadcasts + 2 transposes) + the Linear's 2, for 11 of the 12 steps
    assert shared >= 11 * 10
    assert shared < bounded.STATS["ops"] - ops               # the rest done as before
    with monkeypatch.context() as m:
        m.setattr(bounded, "SHARE_MOVES", False)
        before = bounded.STATS["moves_shared"]
        slow = _run(x, y, 4, dtype)
        assert bounded.STATS["moves_shared"] == before
    _assert_bitwise(fast, slow)


def test_a_shared_move_keys_on_the_array_and_the_move(low_bounds):
    """Two weights of one shape, moved the same way, and one weight moved two ways, each
    get their own result (against NumPy)."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    a, b = gj.tensor(w1), gj.tensor(w2)
    acc = gj.zeros(4, 3, dtype=gj.float64)
    expected = np.zeros((4, 3))
    for step in range(12):                  # > the lowered bound: computed op by op
        acc = acc + a.t() * step + b.t() + a.reshape(4, 3)
        expected = expected + w1.T * step + w2.T + w1.reshape(4, 3)
    before = bounded.STATS["moves_shared"]
    np.testing.assert_array_equal(acc.numpy(), expected)
    assert bounded.STATS["moves_shared"] - before >= 3 * 10


def test_few_kept_moves_share_less_and_give_the_same_numbers(low_bounds, monkeypatch):
    """moved keeps only the last MOVES_KEPT results: with one kept, the moves of a step
    (different Exprs in turn) push each other out; the numbers stay the same."""
    x, y = _data(4, 10, seed=2)
    before = bounded.STATS["moves_shared"]
    full = _run(x, y, 3)
    many = bounded.STATS["moves_shared"] - before
    monkeypatch.setattr(bounded, "MOVES_KEPT", 1)
    before = bounded.STATS["moves_shared"]
    few = _run(x, y, 3)
    assert bounded.STATS["moves_shared"] - before < many // 2
    _assert_bitwise(full, few)


@pytest.mark.parametrize("dtype", [gj.float32, gj.float64], ids=["f32", "f64"])
def test_ops_run_the_program_kept_for_their_op_key(dtype, low_bounds, monkeypatch):
    """The ops of a read in pieces run a program kept per op key instead of keying a walk
    of each: bitwise the walk's numbers, and a second closure builds no program."""
    x, y = _data(5, 12, seed=6)
    before = dict(bounded.ONE_OP_STATS)
    fast = _run(x, y, 4, dtype)
    assert bounded.ONE_OP_STATS["hits"] - before["hits"] > 10 * 20
    misses = bounded.ONE_OP_STATS["misses"]
    again = _run(x, y, 4, dtype)
    assert bounded.ONE_OP_STATS["misses"] == misses
    with monkeypatch.context() as m:
        m.setattr(bounded, "ONE_OP_PROGRAMS", False)
        hits = bounded.ONE_OP_STATS["hits"]
        slow = _run(x, y, 4, dtype)
        assert bounded.ONE_OP_STATS["hits"] == hits
    _assert_bitwise(fast, slow)
    _assert_bitwise(fast, again)


def _spy_walks(monkeypatch) -> list:
    """The primitives of the ops that took realize_plans' walk."""
    walked = []
    compute = realize_plans.compute

    def spy(pending, run):
        walked.extend(e.op.prim.name for e in pending)
        return compute(pending, run)
    monkeypatch.setattr(realize_plans, "compute", spy)
    return walked


def test_repeated_operands_and_several_results_key_apart_or_take_the_walk(low_bounds,
                                                                          monkeypatch):
    """`a * a` and `a * b` of one type get programs of their own; sort (two results) takes
    the walk. Against NumPy, one elementwise op at a time (exact)."""
    walked = _spy_walks(monkeypatch)
    rng = np.random.default_rng(3)
    a0, b0 = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    a, b = gj.tensor(a0), gj.tensor(b0)
    acc, expected = gj.zeros(2, 5, dtype=gj.float64), np.zeros((2, 5))
    for _ in range(6):
        s, _ = gj.sort(acc, 1)
        acc = s * s + acc * b + a
        expected = np.sort(expected, 1) ** 2 + expected * b0 + a0
    hits = bounded.ONE_OP_STATS["hits"]
    np.testing.assert_array_equal(acc.numpy(), expected)
    assert bounded.ONE_OP_STATS["hits"] - hits >= 5 * 3
    assert walked == ["sort"] * 6


def test_kept_programs_are_called_straight_unless_the_settings_ask_for_more(
        low_bounds, monkeypatch, gradjit_env):
    """Kept one-op and node programs call their Executable without run_function's lookups;
    with GRADJIT_LOG=1 (not plain native code) every call goes through run_function again,
    with the same numbers."""
    from tracer import run_programs, tensor
    from tracer.autograd import by_node
    calls = []

    def counting(fn, arrays):
        calls.append(fn)
        return real(fn, arrays)
    real = tensor.run_function
    for module in (run_programs, tensor, by_node):
        monkeypatch.setattr(module, "run_function", counting)
    x, y = _data(4, 12, seed=7)
    _run(x, y, 3)                              # keeps the programs
    del calls[:]
    straight = _run(x, y, 3)
    few = len(calls)
    gradjit_env("GRADJIT_LOG", "1")
    del calls[:]
    logged = _run(x, y, 3)
    assert few <= 2                            # (the loss's own read, the seed)
    assert len(calls) > few + 10 * 30          # the ops and nodes of 10 steps at least
    _assert_bitwise(straight, logged)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 4), steps=st.integers(2, 6), hidden=st.integers(1, 4),
       f64=st.booleans())
def test_the_per_call_savings_equal_the_general_path_for_any_shape(n, steps, hidden, f64):
    """All three savings on, against all off (moves done again, the walk per op, calls
    through run_function), bitwise."""
    from tracer.autograd import by_node
    x, y = _data(n, steps, seed=steps + 10)
    dtype = gj.float64 if f64 else gj.float32
    with pytest.MonkeyPatch.context() as m:
        _lower_bounds(m, 4)
        fast = _run(x, y, hidden, dtype)
        m.setattr(bounded, "SHARE_MOVES", False)
        m.setattr(bounded, "ONE_OP_PROGRAMS", False)
        m.setattr(bounded, "plain_native", lambda: False)
        m.setattr(by_node, "plain_native", lambda: False)
        slow = _run(x, y, hidden, dtype)
    _assert_bitwise(fast, slow)
