"""JAX-spelled array functions that PyTorch has elsewhere or not at all: segment_sum
(jax.ops), one_hot, gelu (jax.nn) and logsumexp with b= / return_sign=
(jax.scipy.special; tracer/ops/reduce.py's logsumexp forwards those arguments here).
All are traceable compositions of existing primitives."""
from __future__ import annotations

import math

import numpy as np

from ir.core import is_float
from tracer.errors import TracerError
from tracer.ops.operands import (cast, constant, dtype_of, float_dtype, ir_dtype, operands,
                                 to_tensor, user_error)
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["segment_sum", "one_hot", "gelu"]


@torch_op("IndexAdd")
def segment_sum(data, segment_ids, num_segments=None, indices_are_sorted=False,
                unique_indices=False):
    """jax.ops.segment_sum: out[s] = sum of data[i] with segment_ids[i] == s, shape
    (num_segments,) + data.shape[1:]; ids outside [0, num_segments) are dropped. Without
    num_segments it is max(segment_ids) + 1, which needs concrete ids (eager)."""
    t, ids = to_tensor(data), to_tensor(segment_ids)
    bad_ids = ids.ndim != 1 or dtype_of(ids) not in ("i32", "i64")
    if bad_ids or t.ndim < 1 or ids.shape[0] != t.shape[0]:
        raise user_error(ValueError, f"segment_sum: segment_ids must be a 1-d integer tensor "
                                     f"as long as data's first axis, got {list(ids.shape)} "
                                     f"for data {list(t.shape)}")
    if num_segments is None:
        if ids._expr.symbolic:
            raise user_error(TracerError, "segment_sum() without num_segments has a "
                                          "data-dependent output shape; give num_segments=")
        arr = np.asarray(ids)
        num_segments = int(arr.max()) + 1 if arr.size else 0
    n, k = ids.shape[0], int(num_segments)
    idx = cast(ids, "i64")
    inside = apply("logical_and", apply("ge", idx, constant(0, "i64", (n,))),
                   apply("lt", idx, constant(k, "i64", (n,))))
    idx = apply("select", inside, idx, constant(k, "i64", (n,)))
    keep = apply("broadcast_in_dim", inside, shape=tuple(t.shape), dims=(0,))
    upd = apply("select", keep, t, constant(0, dtype_of(t), tuple(t.shape)))
    zeros = constant(0, dtype_of(t), (k + 1,) + tuple(t.shape[1:]))
    out = apply("scatter_add", zeros, idx, upd, axis=0)
    return apply("slice", out, start=(0,) * t.ndim, limit=(k,) + tuple(t.shape[1:]),
                 stride=(1,) * t.ndim)


@torch_op("Eq")
def one_hot(x, num_classes: int, *, dtype=None, axis: int = -1):
    """jax.nn.one_hot: float32 (or dtype) with a 1 at each index along a new axis; indices
    outside [0, num_classes) give all zeros. (torch.nn.functional.one_hot is PyTorch's:
    int64, num_classes=-1 allowed.)"""
    t = to_tensor(x)
    shape = tuple(t.shape)
    a = axis % (len(shape) + 1)
    out_shape = shape[:a] + (int(num_classes),) + shape[a:]
    classes = apply("iota", dtype="i64", shape=out_shape, dim=a)
    wide = apply("broadcast_in_dim", cast(t, "i64"), shape=out_shape,
                 dims=tuple(i if i < a else i + 1 for i in range(len(shape))))
    return cast(apply("eq", wide, classes), ir_dtype(dtype) if dtype is not None else "f32")


@torch_op("Gelu")
def gelu(x, approximate=False):
    """x * Phi(x): exact with erf (approximate False or "none", PyTorch's default) or the
    tanh form (True or "tanh"). NOTE: jax.nn.gelu's default is approximate=True."""
    t = to_tensor(x)
    t = cast(t, float_dtype(dtype_of(t)))
    dt, shape = dtype_of(t), tuple(t.shape)
    if approximate in (False, "none"):
        phi = apply("erf", apply("mul", t, constant(1 / math.sqrt(2.0), dt, shape)))
    elif approximate in (True, "tanh"):
        cube = apply("mul", apply("mul", t, t), t)
        inner = apply("add", t, apply("mul", cube, constant(0.044715, dt, shape)))
        phi = apply("tanh", apply("mul", inner, constant(math.sqrt(2 / math.pi), dt, shape)))
    else:
        raise user_error(RuntimeError, "approximate argument must be either none or tanh.")
    half = apply("mul", t, constant(0.5, dt, shape))
    return apply("mul", half, apply("add", phi, constant(1, dt, shape)))


def _expand(r: Tensor, shape: tuple, axes: tuple) -> Tensor:
    """A reduction over axes broadcast back to shape."""
    kept = tuple(a for a in range(len(shape)) if a not in axes)
    return apply("broadcast_in_dim", r, shape=shape, dims=kept)


def weighted_logsumexp(x, axes: tuple, keepdim: bool, b, return_sign: bool):
    """log(|sum(b * exp(x))|) over axes (and its sign with return_sign; without it a
    negative sum gives NaN, as jax.scipy.special.logsumexp). The max over the elements with
    b != 0 shifts the exponentials (0 where it is infinite) and carries no gradient."""
    t = to_tensor(x)
    if b is None:
        t, w = operands(t, 1.0)
    else:
        t, w = operands(t, b)
    if not is_float(dtype_of(t)):
        t, w = cast(t, float_dtype(dtype_of(t))), cast(w, float_dtype(dtype_of(t)))
    dt, shape = dtype_of(t), tuple(t.shape)
    used = apply("ne", w, constant(0, dt, shape))
    m = apply("reduce_max", apply("select", used, t, constant(-math.inf, dt, shape)), axes=axes)
    finite = apply("lt", apply("abs", m), constant(math.inf, dt, m.shape))
    m = apply("stop_gradient", apply("select", finite, m, constant(0, dt, m.shape)))
    s = apply("reduce_sum", apply("mul", w, apply("exp", apply("sub", t, _expand(m, shape, axes)))),
              axes=axes)
    out = apply("add", apply("log", apply("abs", s)), m)
    sign = apply("sign", s)
    if not return_sign:
        out = apply("select", apply("lt", s, constant(0, dt, s.shape)),
                    constant(math.nan, dt, s.shape), out)
    if keepdim:
        kept = tuple(1 if a in axes else d for a, d in enumerate(shape))
        out, sign = apply("reshape", out, shape=kept), apply("reshape", sign, shape=kept)
    return (out, sign) if return_sign else out
