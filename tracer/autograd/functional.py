"""torch.autograd.functional on gradjit's compiled functional transforms.

Takes `inputs` (a Tensor or a tuple of them) instead of argnums and returns Tensors shaped
as PyTorch documents: jacobian(f, x) has shape out.shape + x.shape, a tuple of inputs gives
a tuple (of tuples, for tuple outputs). create_graph, strict and vectorize are accepted;
the results are computed by compiled transforms of func (which must be traceable).
"""
from __future__ import annotations

from tracer import api
from tracer.tensor import Tensor

def _as_tuple(inputs) -> tuple[tuple, bool]:
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), True
    return (inputs,), False


def _shape_result(per_input, out_is_tuple: bool, in_is_tuple: bool):
    """torch's nesting: [output][input], dropping the levels that were not tuples."""
    if not out_is_tuple:
        per_input = [per_input]
    rows = [tuple(r) if in_is_tuple else r[0] for r in per_input]
    return tuple(rows) if out_is_tuple else rows[0]


def _detached(xs):
    return tuple(x.detach() if isinstance(x, Tensor) else x for x in xs)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """torch.autograd.functional.jacobian (see the module docstring)."""
    xs, in_tuple = _as_tuple(inputs)
    out = func(*xs)
    out_tuple = isinstance(out, (tuple, list))
    jac = api.jacobian(func, argnums=tuple(range(len(xs))))(*_detached(xs))
    # gradjit gives [output][input] for tuple outputs, [input] for a single one
    per = [list(j) for j in jac] if out_tuple else list(jac)
    return _shape_result(per, out_tuple, in_tuple)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """torch.autograd.functional.hessian of scalar-valued func."""
    xs, in_tuple = _as_tuple(inputs)
    h = api.hessian(func, argnums=tuple(range(len(xs))))(*_detached(xs))
    rows = [tuple(r) for r in h]
    return tuple(rows) if in_tuple else rows[0][0]


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """torch.autograd.functional.vjp: (func(inputs), v^T J)."""
    xs, in_tuple = _as_tuple(inputs)
    out, pullback = api.vjp(func, *_detached(xs))
    if v is None:
        if isinstance(out, Tensor) and out.numel() != 1:
            raise RuntimeError("The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
        v = out * 0 + 1
    cts = pullback(v)
    return out, (tuple(cts) if in_tuple else cts[0])


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """torch.autograd.functional.jvp: (func(inputs), J v)."""
    xs, in_tuple = _as_tuple(inputs)
    if v is None:
        if len(xs) != 1 or xs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the "
                               "user-provided function is a single Tensor with a single "
                               "element.")
        v = (xs[0] * 0 + 1,)
    vs, _ = _as_tuple(v)
    return api.jvp(func, _detached(xs), _detached(vs))


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """torch.autograd.functional.hvp: (func(inputs), H v) for scalar-valued func."""
    xs, in_tuple = _as_tuple(inputs)
    vs, _ = _as_tuple(v)
    g = api.grad(func, argnums=tuple(range(len(xs))))
    out = func(*_detached(xs))
    _, hv = api.jvp(lambda *a: g(*a), _detached(xs), _detached(vs))
    return out, (tuple(hv) if in_tuple else hv[0])


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """torch.autograd.functional.vhp: v^T H, equal to H v (the Hessian is symmetric)."""
    return hvp(func, inputs, v, create_graph, strict)
