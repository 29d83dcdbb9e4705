"""Tensor: the user's handle on an Expr, shared by the functional and imperative fronts.

Operations on Tensors never compute anything by themselves: they record IR ops (see
tracer/expr.py). Reading a value (`.numpy()`, `.item()`, `print`) realises it: the pending
graph behind it is cut into an ir.Function, compiled (cached by structure) and run.
Under a functional trace (`jit`, `grad`, ...) the graph reaches symbolic parameters, which
cannot be realised: asking for their data raises TracerError naming the user's line.

Operators and methods (`+`, `.sum()`, ...) are attached by the op modules in tracer/ops/.
The autograd fields (`requires_grad`, `grad`, `grad_fn`, version counters) are managed by
tracer/autograd/.
"""
from __future__ import annotations

import numpy as np

from tracer import pipeline
from tracer.dtypes import DType, dtype_from_ir
from tracer.errors import TracerError, user_frame_path
from tracer.expr import Expr, build_function, data_expr


class Tensor:
    # autograd metadata lives in these slots; tracer/autograd fills them in
    def __init__(self, expr: Expr):
        self._expr = expr
        self._version = 0
        self.requires_grad = False
        self.grad = None
        self.grad_fn = None

    # ---- static facts, known without computing anything ----

    @property
    def shape(self):
        from tracer.dtypes import Size
        return Size(self._expr.type.shape)

    @property
    def dtype(self) -> DType:
        return dtype_from_ir(self._expr.type.dtype)

    @property
    def ndim(self) -> int:
        return self._expr.type.ndim

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return self._expr.type.size

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- reading data ----

    def _realize(self) -> np.ndarray:
        """The value as a NumPy array (read-only view of the realised buffer)."""
        return realize([self._expr])[0]

    def __array__(self, dtype=None, copy=None):
        arr = self._realize()
        return arr.astype(dtype) if dtype is not None else arr.copy()

    def _require_concrete(self, what: str):
        if self._expr.symbolic:
            raise TracerError(
                f"{what} needs the concrete value of a traced tensor {self._expr.type} "
                f"at {user_frame_path()}. Inside jit/grad, Python control flow cannot depend "
                "on traced data: use gj.cond(pred, true_fn, false_fn, *operands) for branches, "
                "gj.fori_loop(lo, hi, body, init) or gj.scan(f, init, xs) for loops with a "
                "known trip count, gj.while_loop(cond_fn, body_fn, init) otherwise, or "
                "gj.where(pred, x, y) for elementwise choices.")

    def __bool__(self) -> bool:
        self._require_concrete("bool()")
        if self.numel() != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._realize().reshape(()))

    def item(self):
        self._require_concrete(".item()")
        if self.numel() != 1:
            raise RuntimeError(
                f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._realize().reshape(()).item()

    def __float__(self) -> float:
        self._require_concrete("float()")
        return float(self.item())

    def __int__(self) -> int:
        self._require_concrete("int()")
        return int(self.item())

    def __index__(self) -> int:
        self._require_concrete("using a tensor as an index")
        if self._expr.type.dtype not in ("i32", "i64", "bool") or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def tolist(self):
        self._require_concrete(".tolist()")
        return self._realize().tolist()

    def _numpy(self) -> np.ndarray:
        """A copy of the value as a NumPy array, with no autograd checks."""
        self._require_concrete(".numpy()")
        return self._realize().copy()

    def numpy(self) -> np.ndarray:
        return self._numpy()

    def __repr__(self) -> str:
        if self._expr.symbolic:
            return f"Traced<{self._expr.type}>"
        return f"Tensor({self._realize()!r})"

    def __hash__(self) -> int:
        return id(self)


def realize(exprs: list[Expr]) -> list[np.ndarray]:
    """Computes the given Exprs (compiling their pending graph) and stores their data."""
    pending = [e for e in exprs if e.data is None]
    if pending:
        fn, captures = build_function("realize", [], pending)
        for c in captures:
            if c.symbolic:
                raise TracerError("cannot compute a value that depends on a traced parameter")
        outs = pipeline.run(fn, [c.data for c in captures])
        for e, out in zip(pending, outs):
            out.flags.writeable = False
            e.data = out
    return [e.data for e in exprs]


def tensor_from_array(array, dtype: str | None = None) -> Tensor:
    """A realised Tensor holding a copy of array (optionally converted to an IR dtype)."""
    arr = np.array(array, copy=True)
    if dtype is not None:
        from ir.core import DTYPES
        arr = arr.astype(DTYPES[dtype])
    arr.flags.writeable = False
    return Tensor(data_expr(arr))
