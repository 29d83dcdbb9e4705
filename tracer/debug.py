"""gradjit.debug.print: jax.debug.print, printing from inside traced and compiled code.

    @gj.jit
    def f(x):
        y = gj.sin(x)
        gj.debug.print("y = {}", y)       # printed on every call, with the values
        return y * 2

Under a trace the call records one `debug_print` op whose results replace the printed
Tensors (the same Tensor objects now hold the op's outputs, which equal their inputs), so the
print runs, in native code through a host callback or in the interpreter, whenever those
values are computed after it. **differs from JAX:** a printed value that nothing later reads
(a temporary such as `x.sum()` written only into the print) is dropped with the rest of its
dead code; print a value that is used, or return it. Outside a trace it prints at once.
"""
from __future__ import annotations

import builtins

import numpy as np

from ir import debug_print
from tracer import record
from tracer.ops.operands import user_error
from tracer.staging import as_tensor
from tracer.tensor import Tensor

__all__ = ["print"]


def print(fmt: str, *args, ordered: bool = False, **kwargs) -> None:  # noqa: A001
    """Prints fmt.format(*args, **kwargs) with the values, when they are computed."""
    values = list(args) + list(kwargs.values())
    try:
        tensors = [as_tensor(v) for v in values]
    except TypeError as e:
        raise user_error(TypeError, f"debug.print: {e}") from None
    names = tuple(kwargs)
    if not any(t._expr.symbolic for t in tensors):
        debug_print.emit(fmt, names, 0, [np.asarray(t.numpy()) for t in tensors])
        return
    _check_format(fmt, names, tensors)
    outs = record.apply("debug_print", *tensors, fmt=fmt, names=names, batch_dims=0)
    outs = outs if isinstance(outs, tuple) else (outs,)
    for v, out in zip(values, outs):
        if isinstance(v, Tensor):
            v._expr = out._expr


def _check_format(fmt: str, names, tensors):
    """The format must accept the values (checked now, on zeros, to name the user's line)."""
    zeros = [np.zeros(t._expr.type.shape, t._expr.type.np_dtype) for t in tensors]
    try:
        debug_print.render(fmt, names, zeros)
    except (IndexError, KeyError, ValueError, TypeError) as e:
        raise user_error(type(e), f"debug.print: format {fmt!r} does not accept the "
                                  f"arguments: {e}") from None


_ = builtins   # `print` above shadows the builtin inside this module on purpose
