"""The IR verifier: checks SSA and types of a Function (after JAX's typecheck_jaxpr).

    verify(fn)       # returns fn, or raises VerifyError naming the function and the op

Checked: every operand is defined before its use in the same function (regions are closed:
a region sees only its own parameters), every value is defined once in its function,
result types agree with the primitive's shape rule (which also checks params, operand
counts, regions and constant values), params are printable, and a function's results are
defined. Regions are verified recursively.
Each function is its own name scope, so one region Function may be shared by several ops
(Builder.inline shares them).
"""
from __future__ import annotations

from ir.core import Function, Op, TensorType, Value
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
