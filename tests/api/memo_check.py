"""One check shared by the op_memo tests: a call run three ways (its body with memoisation
off, its body learning the template, the template replayed) records the same graph, values,
gradients and grad_fn name."""

import numpy as np
import pytest

import gradjit as gj
from tracer import op_memo


def graph(t) -> list:
    """The recorded Expr graph behind t: (primitive, params, type, operand positions)."""
    out, index, stack = [], {}, [t._expr]
    order = []
    while stack:
        e = stack.pop()
        if id(e) in index:
            continue
        index[id(e)] = len(order)
        order.append(e)
        if e.op is not None:
            stack.extend(e.args)
    for e in order:
        if e.op is None:
            out.append(("leaf", e.type))
        else:
            out.append((e.op.prim.name, e.op.frozen, e.type,
                        tuple(index[id(a)] for a in e.args)))
    return out


def assert_replay_matches_body(call, arrays, grad: bool, loss=lambda out: out.sum()):
    """Run call on fresh tensors of arrays three ways; the third must replay a template and
    all three must agree bit for bit."""
    results = []
    for memo in (False, True, True):          # body; body learning the template; replay
        with pytest.MonkeyPatch.context() as mp:
            if not memo:
                mp.setattr(op_memo, "key_of", lambda fn, args, kwargs: None)
            ts = [gj.tensor(x, requires_grad=grad) for x in arrays]
            before = op_memo.STATS["replays"]
            out = call(*ts)
            replays = op_memo.STATS["replays"] - before
            grads = gj.autograd.grad(loss(out), ts, allow_unused=True) if grad else ()
            results.append((graph(out), out.detach().numpy().copy(),
                            [None if g is None else g.numpy() for g in grads],
                            out.grad_fn.name() if grad else None, replays))
    assert results[0][4] == 0 and results[2][4] >= 1     # the third call replayed
    for other in results[1:]:
        assert other[0] == results[0][0]
        np.testing.assert_array_equal(other[1], results[0][1])
        assert other[3] == results[0][3]
        for g0, g1 in zip(results[0][2], other[2]):
            assert (g0 is None) == (g1 is None)
            if g0 is not None:
                np.testing.assert_array_equal(g1, g0)
