"""autograd.Function under the functional transforms (grad, vjp, jacobian, jvp, jit of them).

Inside a functional trace no input requires grad, so `Function.apply` attaches no node, and
ir.autodiff would differentiate the recorded forward, ignoring the user's backward. Instead
the outputs are rewritten so that any IR transform differentiates them through the user's
backward B (a linear map g -> input cotangents, traced once on symbolic g):

    out = y + s,   s = B^T(d),   d = x - stop_gradient(x)

y is the forward's value with its gradient stopped. d is zero in value with the identity as
derivative, so s is zero in value and ds/dx = B^T: the VJP of out is B^T^T = B, exactly the
user's backward (and the JVP is B^T, its transpose). B^T is ir.autodiff's transpose of the
traced backward (its VJP with respect to g). s is the mean of B^T with the saved tensors live
and with them stopped (see _half_sum), so that a second derivative differentiates the user's
backward through the saved tensors exactly once, as PyTorch's double backward does. Where x
is not finite, or the backward multiplies by a saved value that is not, d or s would be NaN:
those elements keep the forward's value and get a zero gradient.

A backward that is not linear in its grad_outputs (e.g. one that clips them) has no
transpose: a warning says so, and the transforms differentiate the forward instead.
"""
from __future__ import annotations

import warnings

from ir.autodiff import vjp
from ir.primitives import PRIMITIVES
from tracer.autograd.grad_mode import no_grad
from tracer.expr import apply_function, apply_op, build_function, param_expr
from tracer.tensor import Tensor

# linear in all their operands jointly (besides the primitives with the `linear` trait);
# mul and dot_general are linear in one operand, div in its numerator, select in its branches
_LINEAR_JOINTLY = {"add", "sub", "neg", "convert", "concatenate"}


def is_symbolic(tensors) -> bool:
    """Some input is a value of a trace (not realised data): a transform may differentiate it."""
    return any(t._expr.symbolic for t in tensors)


def custom_outputs(cls, ctx, tensors, outputs, fit):
    """The outputs (float Tensors, or None where not differentiable) rewritten so that the
    IR transforms differentiate them through cls.backward; returns them unchanged (with a
    warning) when the backward is not linear in its grad_outputs."""
    live = [t for t in outputs if t is not None]
    params = [param_expr(t._expr.type, "grad") for t in live]
    grads_in, it = [], iter(params)
    for t in outputs:
        grads_in.append(Tensor(next(it)) if t is not None else None)
    with no_grad():
        result = cls.backward(ctx, *grads_in)
    grads = fit(result)
    pairs = [(k, g._expr) for k, g in enumerate(grads) if g is not None]
    if not pairs:
        return outputs
    bwd, captures = build_function(f"{cls.__name__}_backward", params, [e for _, e in pairs])
    if not _linear_in(bwd, len(params)):
        warnings.warn(f"the backward of {cls.__name__} is not linear in its grad_outputs, so "
                      "grad/vjp/jacobian differentiate its forward instead (the imperative "
                      ".backward() uses it)", stacklevel=4)
        return outputs
    transpose = vjp(bwd, wrt=list(range(len(params))))
    zeros = [_const(0, p.type) for p in params]
    ds = [_probe(tensors[k]._expr) for k, _ in pairs]
    live = apply_function(transpose, zeros + list(captures) + ds)[len(bwd.results):]
    stopped = [_op("stop_gradient", c) for c in captures]
    cut = apply_function(transpose, zeros + stopped + ds)[len(bwd.results):]
    s_all = [_half_sum(a, b) for a, b in zip(live, cut)]
    out, it = [], iter(s_all)
    for t in outputs:
        out.append(None if t is None else Tensor(_plus_zero(t._expr, next(it))))
    return out


def _linear_in(fn, nparams: int) -> bool:
    """Every result of fn is a linear function of its first nparams params."""
    dep = set(fn.params[:nparams])
    for op in fn.body:
        hits = [i for i, v in enumerate(op.inputs) if v in dep]
        if not hits:
            continue
        name = op.prim.name
        if PRIMITIVES[name].linear or name in _LINEAR_JOINTLY:
            ok = True
        elif name == "select":
            ok = 0 not in hits
        elif name in ("mul", "dot_general"):
            ok = len(hits) == 1
        else:
            ok = name == "div" and hits == [0]
        if not ok:
            return False
        dep.update(op.results)
    return all(r in dep for r in fn.results)


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


def _half_sum(live, cut):
    """(live + cut) / 2: both are zero in value, and both have the user's backward as their
    first derivative; through the saved tensors, `live` has the backward's derivative twice
    (once from the backward, once from d's derivative inside the saved tensors' cotangent),
    `cut` none, so the mean differentiates the backward exactly once, as PyTorch's double
    backward does."""
    return _op("mul", _op("add", live, cut), _const(0.5, live.type))


def _const(value, t):
    return apply_op("constant", (), None, value=value, dtype=t.dtype, shape=t.shape)[0]


def _op(prim, *args, **params):
    return apply_op(prim, args, None, **params)[0]


def _finite(e):
    """x - x == 0 exactly for a finite x (NaN for inf and NaN)."""
    return _op("eq", _op("sub", e, e), _const(0, e.type))


def _probe(x):
    """Zero in value, identity derivative: x - stop_gradient(x), 0 where x is not finite."""
    d = _op("sub", x, _op("stop_gradient", x))
    return _op("select", _finite(_op("stop_gradient", x)), d, _const(0, x.type))


def _plus_zero(y, s):
    """stop_gradient(y) + s, s being zero in value (where it is NaN: y, with no gradient)."""
    y = _op("stop_gradient", y)
    ok = _finite(_op("stop_gradient", s))
    return _op("select", ok, _op("add", y, s), y)
