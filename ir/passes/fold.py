"""Constant folding, evaluated with the reference interpreter's rules (folding means what
running means: IEEE semantics, 1/0 -> inf, results rounded to their dtype).

Two cases: an op whose operands are all constants and whose result is small
(MAX_FOLD_ELEMENTS) becomes the constant it computes, stored inline; an elementwise or
shape op whose operands are all splats (one value everywhere) becomes a splat of any size,
which costs nothing in native code.
"""
from __future__ import annotations

import numpy as np

from ir.core import Function, Op, TensorType, Value
from ir.interpret import eval_op
from ir.passes.rewrite import REARRANGES, Context, rewrite, splat
from ir.primitives import PRIMITIVES, having

MAX_FOLD_ELEMENTS = 16       # fold only results this small: constants are stored inline

ELEMENTWISE = having(elementwise=True)
# Ops that only move elements: a splat stays the same splat.
MOVERS = REARRANGES
FOLDABLE = ELEMENTWISE | MOVERS


def constant_op(op: Op, array) -> Op:
    """A constant defining op's result with the value of array (splat when uniform)."""
    t = op.results[0].type
    flat = np.asarray(array).reshape(-1)
    # NOTE: compare bytes, so that -0.0 and 0.0 differ and nan equals nan
    uniform = flat.size and flat.tobytes() == flat[:1].repeat(flat.size).tobytes()
    value = flat[0].item() if uniform else _to_tuple(np.asarray(array).tolist())
    return Op(PRIMITIVES["constant"], (), op.results,
              {"value": value, "dtype": t.dtype, "shape": t.shape}, (), op.loc)


def _to_tuple(v):
    return tuple(_to_tuple(e) for e in v) if isinstance(v, list) else v


def _fold_small(op: Op, ctx: Context):
    if not 0 < op.results[0].type.size <= MAX_FOLD_ELEMENTS:
        return None
    consts = [ctx.def_of(v, "constant") for v in op.inputs]
    if any(c is None for c in consts):
        return None
    args = [eval_op(c, [])[0] for c in consts]
    return constant_op(op, eval_op(op, args)[0])


def _fold_splat(op: Op, ctx: Context):
    scalars = [splat(v, ctx) for v in op.inputs]
    if any(s is None for s in scalars):
        return None
    out = op.results[0]
    if op.prim.name in MOVERS:
        value = np.asarray(scalars[0], dtype=out.type.np_dtype)
    else:
        scalar_op = Op(op.prim, tuple(Value(v.type.with_shape(())) for v in op.inputs),
                       (Value(TensorType(out.dtype, ())),), dict(op.params))
        args = [np.asarray(s, dtype=v.type.np_dtype) for s, v in zip(scalars, op.inputs)]
        value = eval_op(scalar_op, args)[0]
    return Op(PRIMITIVES["constant"], (), op.results,
              {"value": value.item(), "dtype": out.dtype, "shape": out.shape}, (), op.loc)


def fold_rule(op: Op, ctx: Context):
    """The folding rule (None: op is not a foldable op of constants)."""
    if op.prim.name not in FOLDABLE or not op.inputs:
        return None
    return _fold_small(op, ctx) or _fold_splat(op, ctx)


def fold_changed(fn: Function) -> tuple[Function, bool]:
    """fold, and whether it folded anything (in regions too)."""
    return rewrite(fn, fold_rule, fold_changed)


def fold(fn: Function) -> Function:
    """Replaces an op of constants by the constant it computes: any small result, and
    splats of any size from elementwise and shape ops on splats."""
    return fold_changed(fn)[0]
