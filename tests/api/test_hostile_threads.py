"""Two Python threads reading the same pending values at once (tracer/pending_expr.LOCK).

A followed step (the polynomial tutorial's loop) leaves its results pending: their Ops are
built on first use (pending_expr.materialise) and their data computed by the read
(tensor.realize). Two threads reading the same values used to race: one saw a half-built
recipe (`ValueError: not enough values to unpack`), or an Expr the other had just settled
while it walked the graph (`AttributeError: 'NoneType' object has no attribute 'results'`),
or a KeyError in the table of updated tensors. Now one thread builds and computes at a time
and the other finds the values: every read gives the single-threaded read's bits.
"""
import math
import sys
import threading

import gradjit as torch
from tracer import pending_expr


def _followed_step(steps: int = 6):
    """The tutorial's loop (a step the tape follows) left with its results pending."""
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)
    a, b = torch.tensor(0.1), torch.tensor(0.2)
    for _ in range(steps):
        y_pred = a + b * x + x.pow(2) * 0.3
        (y_pred - y).pow(2).sum().item()
        g = -2.0 * (y - y_pred)
        ga, gb = g.sum(), torch.matmul(g, x).sum()
        a -= 1e-6 * ga
        b -= 1e-6 * gb
    return [ga, gb, a, b, y_pred, g]


def _read(t):
    return t.item() if t.numel() == 1 else t.numpy()[7].item()


def _in_two_threads(tensors, read):
    """read(tensors[k]) for every k in two threads started together, in opposite orders;
    (values per thread, exceptions raised)."""
    out, errors = [[None] * len(tensors) for _ in range(2)], []
    start = threading.Barrier(2)

    def reader(i):
        try:
            start.wait()
            order = range(len(tensors)) if i else reversed(range(len(tensors)))
            for k in order:
                out[i][k] = read(tensors[k])
        except Exception as e:      # (reported by the test, not lost in the thread)
            errors.append(repr(e))
    workers = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return out, errors


def _often_switching(test):
    """test run with the interpreter switching threads every microsecond (races show)."""
    def run():
        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            test()
        finally:
            sys.setswitchinterval(old)
    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


@_often_switching
def test_two_threads_read_the_same_pending_values():
    expected = [_read(t) for t in _followed_step()]
    pending = 0
    for _ in range(150):
        tensors = _followed_step()
        pending += sum(type(t._expr) is pending_expr.PendingExpr for t in tensors)
        out, errors = _in_two_threads(tensors, _read)
        assert not errors
        assert out == [expected, expected]
    assert pending > 0              # the reads did meet pending values


@_often_switching
def test_two_threads_build_the_same_pending_ops():
    """Reading `.op` (what any graph walk does) from two threads: one build, and both see
    the same Op, with the Expr a plain one afterwards."""
    built = 0
    for _ in range(150):
        tensors = _followed_step()
        before = pending_expr.STATS["materialised"]
        exprs = [t._expr for t in tensors]
        waiting = sum(type(e) is pending_expr.PendingExpr for e in exprs)
        out, errors = _in_two_threads(exprs, lambda e: e.op)
        assert not errors
        assert [id(op) for op in out[0]] == [id(op) for op in out[1]]
        assert all(type(e) is not pending_expr.PendingExpr for e in exprs)
        assert pending_expr.STATS["materialised"] - before <= waiting
        built += waiting
    assert built > 0
