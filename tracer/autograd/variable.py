"""torch.autograd.Variable: the pre-0.4 wrapper, today an alias of Tensor (as in PyTorch)."""
from __future__ import annotations

from tracer.tensor import Tensor


class _VariableMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableMeta):
    """`Variable(t, requires_grad=True)` returns t itself with requires_grad set, as PyTorch
    does; `isinstance(t, Variable)` holds for every Tensor."""

    def __new__(cls, data, requires_grad: bool = False, volatile: bool = False):
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        if requires_grad:
            data.requires_grad_(True)
        return data
