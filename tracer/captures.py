"""Which Tensor held each Expr a trace read: closed-over tensors as inputs, not constants.

A traced body (jit, grad, the bodies of cond / scan / while_loop) may read Tensors that it
did not receive as arguments: a model's parameters, a tensor of the enclosing scope.
`build_function` turns their Exprs into trailing capture parameters (closure conversion,
as JAX's), but an Expr is a value, not the tensor. While a trace runs, `record.apply`
notes the Tensor behind every Expr an op reads; `owners` then names, for each capture, the
Tensor it came from. That Tensor is what the region or the jitted call takes as an input,
so that

  - the imperative autograd graph gets an edge to it (`w.grad` after `.backward()` through
    `jit(lambda x: x * w)` or a `fori_loop` body closing over `w`), and
  - a cached jitted function reads its current value on every call (after an in-place
    update such as `optimizer.step()`), as PyTorch does, instead of the trace-time value.
"""
from __future__ import annotations

import contextlib
import threading

from tracer import step_tape
from tracer.tensor import realize


class _State(threading.local):
    log = None          # (a class default: getattr of a missing attribute raises inside)


_state = _State()


def note(tensors) -> None:
    """Called with the Tensors an op reads (record.apply); a no-op outside a trace."""
    log = _state.log
    if log is not None:
        for t in tensors:
            e = t._expr
            if id(e) not in log:
                log[id(e)] = (e, t)


def active() -> bool:
    """Whether a trace is noting reads (record.py's op memo stays out of traces)."""
    return _state.log is not None


@contextlib.contextmanager
def reading():
    """Collects the reads of the code run inside; an enclosing collection sees them too
    (a capture of an inner trace is a capture of the outer one). On leaving, pending reads
    that require grad are computed (see _pending_grad_reads)."""
    parent = _state.log
    log: dict = {}
    _state.log = log
    following = step_tape.tls.s
    if following is not None and following.tape is not None:
        # (a call that follows a tape does not test for a trace: step_follow.follow)
        step_tape.drop("a functional trace began")
    try:
        yield log
        realize(_pending_grad_reads(log))
    finally:
        _state.log = parent
        if parent is not None:
            for k, v in log.items():
                parent.setdefault(k, v)


def _pending_grad_reads(log: dict) -> list:
    """The not yet computed values of eager tensors requiring grad that the trace read.

    Computed before the trace is cut, each is a leaf of it, owned by its tensor (an input
    with an autograd edge). Left pending, its Expr would be a chain of ops reaching back to
    some leaf, copied into the traced function: the tensor itself would not be an input and
    the gradient would stop there (`w = a * 2` closed over: a.grad stayed None)."""
    return [e for e, t in log.values()
            if e.data is None and e.op is not None and not e.symbolic and t.requires_grad]


def owners(log: dict, captures: list) -> list:
    """Per capture Expr: the Tensor that held it and still does, else None.

    A tensor changed in place during the trace no longer holds the captured value (its
    current Expr belongs to the finished trace): that capture stays a constant."""
    out = []
    for c in captures:
        hit = log.get(id(c))
        out.append(hit[1] if hit is not None and hit[0] is c and hit[1]._expr is c else None)
    return out
