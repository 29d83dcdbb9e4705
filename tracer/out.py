"""`out=` for the module-level ops that take it in PyTorch (torch.add(x, y, out=z), ...).

The result is computed out of place and written into `out` as an in-place op would
(tracer/autograd/inplace.py: version bump, views see it, PyTorch's error when the result
type cannot be cast to out's dtype). As in PyTorch, out= does not differentiate: an input
(or out) that requires grad under grad mode is an error, and an `out` of another shape is
resized (with PyTorch's deprecation warning when it held elements).
"""
from __future__ import annotations

import functools
import warnings

from tracer import ops
from tracer.autograd import inplace, views
from tracer.autograd.grad_mode import is_grad_enabled, no_grad
from tracer.creation import zeros_like
from tracer.tensor import Tensor

__all__ = ["add", "sub", "mul", "div", "matmul", "cat"]

NO_AUTOGRAD = ("{name}(): functions with out=... arguments don't support automatic "
               "differentiation, but one of the arguments requires grad.")
RESIZED = ("An output with one or more elements was resized since it had shape {old}, which "
           "does not match the required output shape {new}. This behavior is deprecated, and "
           "in a future PyTorch release outputs will not be resized unless they have zero "
           "elements. You can explicitly reuse an out tensor t by resizing it, inplace, to "
           "zero elements with t.resize_(0).")


def _tensors(args):
    for a in args:
        if isinstance(a, Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from _tensors(a)


def with_out(fn, name: str):
    @functools.wraps(fn)
    def op(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}(): argument 'out' must be Tensor, not "
                            f"{type(out).__name__}")
        if is_grad_enabled() and any(t.requires_grad for t in _tensors((*args, out))):
            raise RuntimeError(NO_AUTOGRAD.format(name=name))
        with no_grad():
            result = fn(*args, **kwargs)
            if result.shape != out.shape:
                if out._storage.members is not None:  # PyTorch: overlap checks before resize
                    views.check_inplace(out, _written(result, name), _checked_inputs(args, name))
                if out.numel():
                    warnings.warn(RESIZED.format(old=list(out.shape), new=list(result.shape)),
                                  UserWarning, stacklevel=2)
                if out._storage.members is not None:
                    raise RuntimeError(f"{name}(): cannot resize an out= tensor that shares "
                                       "its storage with a view")
                out._expr = zeros_like(result, dtype=out.dtype)._expr
            inplace.inplace(out, _written(result, name), *_checked_inputs(args, name))
        return out
    return op


def _written(result: Tensor, name: str):
    """The in-place computation writing result into out; its arguments are the inputs
    inplace() checks for overlap with out (views.check_inplace: PyTorch's partial-overlap
    rule of elementwise ops, any overlap for cat)."""
    def compute(src, *inputs):
        return result
    compute.any_overlap = name == "cat"
    return compute


def _checked_inputs(args, name: str) -> list:
    return [] if name == "matmul" else list(_tensors(args))   # (matmul: PyTorch copies)


add = with_out(ops.add, "add")
sub = with_out(ops.sub, "sub")
mul = with_out(ops.mul, "mul")
div = with_out(ops.div, "div")
matmul = with_out(ops.matmul, "matmul")
cat = with_out(ops.cat, "cat")
