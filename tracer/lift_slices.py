"""Slices of a program's inputs at changing offsets, as data instead of constants.

A training loop that walks a data tensor with Python ints (`source[i:i + bptt]`, word-level
language models; `x[i]` per sample) records a `slice` whose start is a constant: each new
offset is a new program structure, so every batch compiled its forward and backward programs
again (~3 s each). Before an imperative program runs (tensor.run_function), a slice along
the leading axis, stride 1, of one of the program's inputs becomes a `gather` of that input
at an index vector passed as one more input: the structure no longer names the offset, and
the next batch finds the compiled program. Slices of intermediate values keep their
constants (their offsets are usually fixed: gates, heads, chunks).
"""
from __future__ import annotations

import weakref

import numpy as np

from ir.core import Function, Op, TensorType, Value
from ir.primitives import PRIMITIVES

_LIFTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # fn -> (fn', extras)


def lift_input_slices(fn: Function, arrays: list) -> tuple[Function, list]:
    """fn with its leading-axis input slices as gathers, and arrays plus their indices."""
    known = _LIFTED.get(fn)
    if known is None:
        known = _LIFTED[fn] = _lift(fn)
    lifted, extras = known
    return (fn, arrays) if lifted is None else (lifted, [*arrays, *extras])


def _leading_rows(op: Op, inputs: set) -> tuple[int, int] | None:
    """(start, limit) when op slices an input along axis 0 only, stride 1, not whole."""
    if op.prim.name != "slice" or op.inputs[0] not in inputs:
        return None
    shape = op.inputs[0].type.shape
    start, limit, stride = op.params["start"], op.params["limit"], op.params["stride"]
    if stride[0] != 1 or (start[0], limit[0]) == (0, shape[0]) or limit[0] <= start[0]:
        return None
    if any((s, lim, st) != (0, d, 1) for s, lim, st, d in
           zip(start[1:], limit[1:], stride[1:], shape[1:])):
        return None
    return start[0], limit[0]


def _lift(fn: Function):
    inputs = set(fn.params)
    if not any(_leading_rows(op, inputs) for op in fn.body):
        return None, ()
    body, params, extras = [], [], []
    gather = PRIMITIVES["gather"]
    for op in fn.body:
        rows = _leading_rows(op, inputs)
        if rows is None:
            body.append(op)
            continue
        index = Value(TensorType("i64", (rows[1] - rows[0],)), "rows")
        params.append(index)
        extras.append(np.arange(rows[0], rows[1], dtype=np.int64))
        body.append(Op(gather, (op.inputs[0], index), op.results, {"axis": 0}, (), op.loc))
    return Function(fn.name, [*fn.params, *params], body, list(fn.results)), tuple(extras)
