"""The IR verifier: checks SSA and types of a Function (after JAX's typecheck_jaxpr).

    verify(fn)       # returns fn, or raises VerifyError naming the function and the op

Checked: every operand is defined before its use in the same function (regions are closed:
a region sees only its own parameters), every value is defined once in its function,
result types agree with the primitive's shape rule, params are printable, constant values
fit their type, and a function's results are defined. Regions are verified recursively.
Each function is its own name scope, so one region Function may be shared by several ops
(Builder.inline shares them).
"""
from __future__ import annotations

import numpy as np

from ir.core import DTYPES, INT_DTYPES, Function, Op, TensorType, Value
from ir.primitives import PRIMITIVES, ShapeError
from ir.printer import format_param, print_op


class VerifyError(ValueError):
    """The IR breaks an SSA or typing invariant; the message includes the printed op."""


def verify(fn: Function) -> Function:
    """Checks fn and all its regions; returns fn so calls can be chained.

    Raises:
        VerifyError: on the first broken invariant, with the function name and printed op.
    """
    _verify_function(fn, outer=frozenset())
    return fn


def _fail(msg: str, fn: Function, op: Op | None = None):
    if op is None:
        raise VerifyError(f"{msg} in @{fn.name}")
    try:
        text = print_op(op)
    except Exception:  # NOTE: a broken op may be unprintable; the error must still be raised
        text = repr(op)
    raise VerifyError(f"{msg} in @{fn.name}:\n  {text}")


def _verify_function(fn: Function, outer: frozenset):
    """outer: the values of the enclosing functions, which fn may not use."""
    defined: set[Value] = set()
    for p in fn.params:
        _define(p, fn, None, defined)
    for op in fn.body:
        _verify_op(op, fn, defined, outer)
    for i, r in enumerate(fn.results):
        if r not in defined:
            where = " (a value of an enclosing function: regions are closed)" if r in outer else ""
            _fail(f"result {i} ({r!r}) is not defined{where}", fn)


def _define(v, fn: Function, op: Op | None, defined: set):
    if not isinstance(v, Value) or not isinstance(v.type, TensorType):
        _fail(f"{v!r} is not a typed IR Value", fn, op)
    if v in defined:
        _fail(f"value {v!r} defined twice", fn, op)
    defined.add(v)


def _verify_op(op: Op, fn: Function, defined: set, outer: frozenset):
    prim = getattr(op.prim, "name", None)
    if PRIMITIVES.get(prim) is not op.prim:
        _fail(f"unknown primitive {op.prim!r}", fn, op)
    for v in op.inputs:
        if v in defined:
            continue
        if v in outer:
            _fail(f"region uses {v!r} of the enclosing function (regions are closed)", fn, op)
        _fail(f"operand {v!r} used before definition", fn, op)
    for region in op.regions:
        _verify_function(region, outer | defined)
    _check_params(op, fn)
    _check_types(op, fn)
    for r in op.results:
        _define(r, fn, op, defined)


def _check_params(op: Op, fn: Function):
    for key, value in op.params.items():
        try:
            format_param(value)
        except TypeError:
            _fail(f"param {key}={value!r} cannot be printed", fn, op)
    if op.prim.name == "constant":
        problem = constant_value_problem(op.params.get("value"), op.results[0].type)
        if problem:
            _fail(problem, fn, op)


def _check_types(op: Op, fn: Function):
    try:
        inferred = op.prim.infer([v.type for v in op.inputs], op.params, tuple(op.regions))
    except ShapeError as e:
        # the reason alone: the printed op below shows the operands and params
        _fail(f"shape rule of '{op.prim.name}' rejects the op: {e.reason}", fn, op)
    got = [r.type for r in op.results]
    if list(inferred) != got:
        _fail(f"result types {[str(t) for t in got]} disagree with the rule of "
              f"'{op.prim.name}' ({[str(t) for t in inferred]})", fn, op)


def constant_value_problem(value, t: TensorType) -> str | None:
    """Why a constant's value does not fit type t (None if it does).

    A scalar is splatted over any shape; a nested list must have exactly t's shape. Each
    element must be of t's dtype: a bool for bool; an int (not a bool) within range for
    i32/i64; a bool, int or float for f32/f64 (ints and bools read as numbers, as in NumPy).
    """
    if isinstance(value, (list, tuple)):
        shape = _nested_shape(value)
        if shape is None:
            return "constant value is a ragged list"
        if shape != t.shape and not (t.size == 0 and shape == (0,)):
            return f"constant value of shape {list(shape)} does not fit {t}"
        elements = _flatten(value)
    elif isinstance(value, (bool, int, float)):
        elements = [value]
    else:
        return f"constant value {value!r} is neither a scalar nor a nested list"
    for e in elements:
        problem = _element_problem(e, t.dtype)
        if problem:
            return f"constant value {problem}"
    return None


def _element_problem(e, dtype: str) -> str | None:
    if dtype == "bool":
        return None if isinstance(e, bool) else f"{e!r} is not a bool"
    if dtype in INT_DTYPES:
        if isinstance(e, bool) or not isinstance(e, int):
            return f"{e!r} is not an {dtype}"
        info = np.iinfo(DTYPES[dtype])
        return None if info.min <= e <= info.max else f"{e} does not fit {dtype}"
    if not isinstance(e, (bool, int, float)):
        return f"{e!r} is not a number"
    try:
        float(e)
    except OverflowError:
        return f"{e} does not fit {dtype}"
    return None


def _flatten(value) -> list:
    if not isinstance(value, (list, tuple)):
        return [value]
    return [e for item in value for e in _flatten(item)]


def _nested_shape(value) -> tuple[int, ...] | None:
    if not isinstance(value, (list, tuple)):
        return ()
    inner = {_nested_shape(e) for e in value}
    if None in inner or len(inner) > 1:
        return None
    return (len(value),) + (inner.pop() if inner else ())
