"""Pending Exprs (tracer/pending_expr.py): a followed step's results get their Ops only when
something reads them. Each reader of an Expr's op or args (printing, numpy, detach, views,
in-place, autograd, a functional trace's captures, build_function) is run on a followed
step's results, mid-step and after the step's read: every value is bitwise the one capture
off gives, and the graph built (its IR, the user's line on each op) is the same text."""

import copy
import logging

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from ir.printer import print_function
from tests.api.capture_check import plain_capture, run_off_and_on  # noqa: F401
from tracer import op_memo, pending_expr, step_capture
from tracer.expr import Expr, build_function, settle
from tracer.tensor import Tensor

AT = 6                  # the tape is followed from the third step on: step AT follows it


pytestmark = pytest.mark.usefixtures("plain_capture")


def ir_text(t) -> list:
    """The IR (with the user's lines) of the graph behind t, and t's value."""
    fn, _ = build_function("f", [], [t._expr])
    return [print_function(fn, locs=True), t.numpy().copy()]


def _grad_through(t) -> list:
    w = gj.tensor(1.5, requires_grad=True)
    (w * t).pow(2).sum().backward()
    return [w.grad.numpy().copy()]


def _jit_capture(t) -> list:
    return [gj.jit(lambda z: (z * t).sum())(gj.ones(t.shape[0])).numpy().copy()]


def _inplace(t) -> list:
    t.add_(0.25)                        # changes what the rest of the step computes
    return [t.numpy().copy()]


READERS = {
    "print": lambda t: [repr(t)],
    "numpy": lambda t: [t.numpy().copy()],
    "detach": lambda t: [(t.detach() * 2.0).numpy().copy()],
    "view": lambda t: [t.view(8, 8).sum(0).numpy().copy(), t[:3].numpy().copy()],
    "inplace": _inplace,
    "autograd": _grad_through,
    "jit capture": _jit_capture,
    "ir": ir_text,
    "expr repr": lambda t: [repr(t._expr)],
}


def loop(steps: int, reader=None, which: int = 0, after_read: bool = False) -> list:
    """A polynomial_tensor-like step; reader(t) runs on step AT's intermediate `which`."""
    x = gj.linspace(-2.0, 2.0, 64)
    y = gj.sin(x)
    a, b = gj.tensor(0.1), gj.tensor(0.2)
    out = []
    for i in range(steps):
        h = b * x
        p = a + h
        r = p - y
        mids = (h, p, r)
        if i == AT and reader is not None and not after_read:
            out += reader(mids[which])
        loss = r.pow(2).sum().item()
        if i == AT and reader is not None and after_read:
            out += reader(mids[which])
        g = -2.0 * r
        a -= 1e-2 * g.sum()
        b -= 1e-2 * (g * x).sum()
        out.append(loss)
    out.append(dict(pending_expr.STATS))  # (before the final reads, which walk the graph)
    return out + [a.numpy().copy(), b.numpy().copy()]


def run_both(steps: int, *args) -> tuple:
    return run_off_and_on(loop, steps, *args, stats=(pending_expr.STATS, step_capture.STATS))


def assert_same(on: list, off: list):
    assert len(on) == len(off)
    for a, b in zip(on, off):
        if isinstance(a, dict) or a is None:
            continue                      # (pending_expr.STATS: see the tests)
        if isinstance(a, str):
            assert a == b
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            assert np.asarray(a).dtype == np.asarray(b).dtype


def test_a_followed_step_builds_no_ops():
    on, delta, off = run_both(12)
    assert_same(on, off)
    assert delta["calls"] >= 7 * 13 and delta["reads"] >= 7
    assert on[-3]["materialised"] - off[-3]["materialised"] == 0 != delta["materialised"]
    on[-3] = off[-3] = None


def test_a_followed_call_returns_a_pending_result():
    x = gj.linspace(-1.0, 1.0, 16)
    w = gj.tensor(0.5)
    kinds = []
    for _ in range(6):
        h = w * x
        kinds.append(type(h._expr))
        (h - x).pow(2).sum().item()
        w -= 1e-1 * (h - x).sum()
    assert kinds[0] is not pending_expr.PendingExpr and kinds[-1] is pending_expr.PendingExpr


@pytest.mark.parametrize("after_read", [False, True], ids=["mid-step", "after the read"])
@pytest.mark.parametrize("which", [0, 1, 2], ids=["b*x", "a+h", "p-y"])
@pytest.mark.parametrize("name", sorted(READERS))
def test_each_reader_sees_the_graph_capture_off_builds(name, which, after_read):
    on, delta, off = run_both(10, READERS[name], which, after_read)
    assert_same(on, off)
    assert delta["calls"] > 0                       # steps before AT followed the tape
    # (a read of a value, numpy or print, keys pending Exprs by their Templates without
    # building them: realize_plans.PENDING; the other readers read the Ops)
    if name not in ("numpy", "print"):
        assert delta["materialised"] > 0


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(sorted(READERS)), which=st.integers(0, 2),
       after_read=st.booleans(), steps=st.integers(AT + 1, AT + 5))
def test_random_readers_equal_capture_off(name, which, after_read, steps):
    on, _, off = run_both(steps, READERS[name], which, after_read)
    assert_same(on, off)


def test_a_result_kept_past_its_step_reads_as_capture_off():
    """A step's intermediate kept in a list and read after later steps ran (its operands'
    tensors were updated in place meanwhile: the pending Expr keeps the old operands)."""
    def run():
        x = gj.linspace(-1.0, 1.0, 32)
        w = gj.tensor(0.5)
        kept = []
        for _ in range(8):
            h = w * x
            kept.append(h)
            (h - x).pow(2).sum().item()
            w -= 1e-1 * (h - x).sum()
        return [k.numpy().copy() for k in kept] + [ir_text(kept[5])[0]]
    step_capture.ENABLED = False
    step_capture.reset()
    off = run()
    step_capture.ENABLED = True
    step_capture.reset()
    before = step_capture.STATS["calls"]
    on = run()
    assert step_capture.STATS["calls"] > before
    assert_same(on, off)


def _replayed(fn, *args):
    """(Template.replay's results, pending_expr.replay's) of one call of fn(*args)."""
    op_memo.clear()               # (an earlier test's template of the same call: not learnt)
    fn(*args)                                     # learns the template
    learnt = list(op_memo._MEMO)
    (key, tensors), = [op_memo.key_of(k[0], args, {}) for k in learnt
                       if op_memo.key_of(k[0], args, {})[0] == k]   # (not an inner op's)
    template = op_memo.template(key)
    assert template is not None
    outs = pending_expr.out_types(template, len(tensors))
    return (template.replay(tensors, "here.py:1"),
            pending_expr.replay(template, outs, [t._expr for t in tensors], tensors,
                                "here.py:1", Tensor))


def _same_graph(eager, pending):
    eager = eager if type(eager) is tuple else (eager,)
    pending = pending if type(pending) is tuple else (pending,)
    texts = [print_function(build_function("f", [], [t._expr for t in ts])[0], locs=True)
             for ts in (eager, pending)]
    assert texts[0] == texts[1]
    for a, b in zip(eager, pending):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_multi_result_templates_materialise_all_results_at_once():
    x = gj.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    eager, pending = _replayed(gj.split, x, 2, 1)
    assert len(pending) == 2
    assert all(type(t._expr) is pending_expr.PendingExpr for t in pending)
    assert pending[1]._expr.op is not None        # reading one materialises both
    assert all(type(t._expr) is not pending_expr.PendingExpr for t in pending)
    _same_graph(eager, pending)


@pytest.mark.parametrize("case", ["mul", "matmul", "cross_entropy", "x*x"])
def test_single_result_templates_build_the_ops_replay_builds(case):
    x = gj.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    w = gj.tensor(np.linspace(0, 1, 8, dtype=np.float32).reshape(2, 4))
    calls = {"mul": (gj.mul, x, gj.tensor(0.5)),
             "matmul": (gj.matmul, x, w.t() * 1.0),
             "cross_entropy": (gj.nn.functional.cross_entropy, x[:, :2] * 1.0,
                               gj.tensor(np.array([0, 1, 1]))),
             "x*x": (gj.mul, x, x)}
    fn, *args = calls[case]
    eager, pending = _replayed(fn, *args)
    _same_graph(eager, pending)


def test_settling_a_pending_result_builds_nothing():
    x = gj.linspace(-1.0, 1.0, 16)
    eager, pending = _replayed(gj.mul, x, gj.tensor(2.0))
    before = pending_expr.STATS["materialised"]
    pending.numpy()                      # the general read walks it: materialised
    assert pending_expr.STATS["materialised"] == before + 1
    _, other = _replayed(gj.mul, x, gj.tensor(3.0))
    settle(other._expr, np.zeros(16, np.float32))
    assert type(other._expr) is not pending_expr.PendingExpr
    assert other._expr.op is None and other._expr.args == ()
    assert pending_expr.STATS["materialised"] == before + 1


def test_a_pinned_value_computed_along_breaks_the_tape(gradjit_env, caplog):
    """y = sin(x) is pending from before the loop (a pin); when it gets its value other than
    through the tape's read (here: settled directly, as a computation along would), the
    next read leaves the tape, with the values capture off gives."""
    def run():
        value = gj.sin(gj.linspace(-1.0, 1.0, 32)).numpy()
        x = gj.linspace(-1.0, 1.0, 32)
        y = gj.sin(x)
        w = gj.tensor(0.5)
        out = []
        for i in range(9):
            if i == 6:
                settle(y._expr, value)
            out.append(((w * x - y) ** 2).sum().item())
            w -= 1e-1 * ((w * x - y) * x).sum()
        return out + [w.numpy().copy()]
    step_capture.ENABLED = False
    step_capture.reset()
    off = run()
    step_capture.ENABLED = True
    step_capture.reset()
    gradjit_env("GRADJIT_LOG", "1")
    caplog.set_level(logging.INFO, logger="gradjit")
    before = dict(step_capture.STATS)
    on = run()
    assert step_capture.STATS["reads"] > before["reads"]
    assert "a value computed before the step changed" in caplog.text
    assert_same(on, off)


def test_copying_a_pending_expr_copies_the_materialised_expr():
    x = gj.linspace(-1.0, 1.0, 8)
    eager, pending = _replayed(gj.mul, x, gj.tensor(2.0))
    e = pending._expr
    assert type(e) is pending_expr.PendingExpr
    c = copy.copy(e)
    assert type(c) is Expr and type(e) is Expr
    assert c.op is e.op and c.args == e.args and c.value is e.value
