"""autograd.Function under the functional transforms: the gradients its backward returns,
fitted to the inputs as the imperative engine fits them (CustomNode._fit).

Function.apply inside grad / vjp / jacobian / jvp / vmap records one custom_vjp_call op
(tracer/custom_call.py) whose body is the forward and whose reverse rule is the user's
backward, so every transform uses that backward (tracer/autograd/function.py).
"""
from __future__ import annotations

from tracer.expr import apply_op


def fit_expr(g, want, name: str, i: int):
    """A returned gradient summed down to the input's shape (when it broadcasts to it) and
    converted to its dtype, as the engine does (CustomNode._fit)."""
    shape = g.type.shape
    if shape != want.shape:
        lead = len(shape) - len(want.shape)
        tail = shape[lead:] if lead >= 0 else ()
        if lead < 0 or any(a != b and a != 1 for a, b in zip(want.shape, tail)):
            raise RuntimeError(f"Function {name} returned an invalid gradient at index {i} - "
                               f"got {list(shape)} but expected shape compatible with "
                               f"{list(want.shape)}")
        axes = tuple(range(lead)) + tuple(lead + k for k, (a, b) in
                                          enumerate(zip(want.shape, tail)) if a != b)
        g = _op("reshape", _op("reduce_sum", g, axes=axes), shape=want.shape)
    if g.type.dtype != want.dtype:
        g = _op("convert", g, dtype=want.dtype)
    return g


def _op(prim, *args, **params):
    return apply_op(prim, args, None, **params)[0]
