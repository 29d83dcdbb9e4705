"""Algebraic simplification: identities that hold in IEEE arithmetic.

Elementwise rules live here; the rules for shape ops, reductions and dot_general (which
mostly rewrite index maps) live in ir/passes/layout.py, sums of padded pieces in
ir/passes/sums.py and the scan rules in ir/passes/loops.py; all join one table.

The elementwise rules are exact for every input, nan, inf and signed zeros included, but
for one accepted exception (as in XLA): adding a zero, x + 0 -> x, keeps a -0.0 that IEEE
would turn into +0.0; the rules that drop an added zero (pads and complementary selects
summed) share it. x * 0 is folded for integers only (for floats it is nan for inf and nan,
and -0.0 for negative x). Rules that change the order of a floating-point sum (a sum of
copies becomes a product, loop accumulators become one stacked reduction) round
differently, as any blocked reduction does, and are documented where they are.
"""
from __future__ import annotations

from ir.core import FLOAT_DTYPES, Function, Op
from ir.passes.layout import layout_rules
from ir.passes.loops import scan_rule
from ir.passes.rewrite import Context, Rule, is_value, rewrite, same_results, splat
from ir.passes.sums import pads_as_concatenate


def _neg_of(v, ctx: Context):
    """x if v = neg(x), else None."""
    op = ctx.def_of(v, "neg")
    return op.inputs[0] if op is not None else None


def _add(op, ctx):
    # NOTE: x + 0.0 -> x differs only for x = -0.0 (IEEE gives +0.0); like XLA we accept that
    x, y = op.inputs
    if is_value(y, ctx, 0):
        return x
    if is_value(x, ctx, 0):
        return y
    if _neg_of(y, ctx) is not None:                    # x + (-y) is x - y, exactly
        return same_results(op, "sub", (x, _neg_of(y, ctx)))
    if _neg_of(x, ctx) is not None:                    # (-x) + y is y - x
        return same_results(op, "sub", (y, _neg_of(x, ctx)))
    selects = _complementary_selects(x, y, ctx)
    if selects is not None:
        return same_results(op, "select", selects)
    return pads_as_concatenate(op, ctx)


def _sub(op, ctx):
    x, y = op.inputs
    if is_value(y, ctx, 0):
        return x
    if _neg_of(y, ctx) is not None:                    # x - (-y) is x + y, exactly
        return same_results(op, "add", (x, _neg_of(y, ctx)))
    return None


def _mul(op, ctx):
    x, y = op.inputs
    if is_value(y, ctx, 1):
        return x
    if is_value(x, ctx, 1):
        return y
    if x.dtype not in FLOAT_DTYPES:
        # x * 0 is 0 for integers only (for floats it is nan for inf and nan, -0.0 for x < 0)
        return next((zero for zero in (x, y) if is_value(zero, ctx, 0)), None)
    for a, b in ((x, y), (y, x)):
        if is_value(b, ctx, -1):                       # x * -1 is -x, exactly
            return same_results(op, "neg", (a,))
    if _neg_of(x, ctx) is not None and _neg_of(y, ctx) is not None:
        return same_results(op, "mul", (_neg_of(x, ctx), _neg_of(y, ctx)))
    for a, c in ((x, y), (y, x)):                      # (-a) * c -> a * (-c), c constant
        if _neg_of(a, ctx) is not None and splat(c, ctx) is not None:
            negated = _negated_constant(c, ctx, op.loc)
            return same_results(op, "mul", (_neg_of(a, ctx), negated))
    return None


def _div(op, ctx):
    x, y = op.inputs
    if is_value(y, ctx, 1):
        return x
    if x.dtype not in FLOAT_DTYPES:
        # NOTE: integer negation wraps (-INT_MIN is INT_MIN), so quotients of negations
        # are not symmetric; x / -1 overflows for INT_MIN
        return None
    if is_value(y, ctx, -1):                           # x / -1 is -x, exactly
        return same_results(op, "neg", (x,))
    if _neg_of(x, ctx) is not None and _neg_of(y, ctx) is not None:
        return same_results(op, "div", (_neg_of(x, ctx), _neg_of(y, ctx)))
    if _neg_of(x, ctx) is not None and splat(y, ctx) is not None:     # (-a) / c -> a / (-c)
        return same_results(op, "div", (_neg_of(x, ctx), _negated_constant(y, ctx, op.loc)))
    return None


def _neg(op, ctx):
    """neg(neg x) -> x; a neg absorbed by a product or quotient: -(a * -b) -> a * b,
    -(a * c) -> a * (-c) for a constant c. Rounding is symmetric, so these are exact."""
    (x,) = op.inputs
    inner = ctx.def_of(x)
    if inner is None:
        return None
    name = inner.prim.name
    if name == "neg":
        return inner.inputs[0]
    if name not in ("mul", "div") or x.dtype not in FLOAT_DTYPES:
        return None
    a, b = inner.inputs
    if _neg_of(b, ctx) is not None:
        return same_results(op, name, (a, _neg_of(b, ctx)))
    if _neg_of(a, ctx) is not None:
        return same_results(op, name, (_neg_of(a, ctx), b))
    for i, v in enumerate((a, b)):
        if splat(v, ctx) is not None:
            negated = _negated_constant(v, ctx, op.loc)
            return same_results(op, name, (negated, b) if i == 0 else (a, negated))
    return None


def _negated_constant(v, ctx: Context, loc):
    """A constant holding -splat(v) (float v): negation is exact, nan and zeros included."""
    return ctx.emit("constant", value=-splat(v, ctx), dtype=v.dtype, shape=v.shape, loc=loc)


def _logical_not(op, ctx):
    inner = ctx.def_of(op.inputs[0], "logical_not")
    return inner.inputs[0] if inner is not None else None


def _integer_pow(op, ctx):
    (x,), n = op.inputs, op.params["n"]
    if n == 1:
        return x
    if n == 0:
        # x**0 is 1 for every x, nan and inf included (IEEE pow)
        one = 1.0 if x.dtype in FLOAT_DTYPES else 1
        return same_results(op, "constant", (), value=one, dtype=x.dtype, shape=x.shape)
    return None


def _pow(op, ctx):
    x, y = op.inputs
    if is_value(y, ctx, 1.0):
        return x
    if is_value(y, ctx, 2.0):
        return same_results(op, "integer_pow", (x,), n=2)
    return None


def _select(op, ctx):
    pred, x, y = op.inputs
    if x is y:
        return x
    p = splat(pred, ctx)
    if isinstance(p, bool):
        return x if p else y
    inner = ctx.def_of(pred, "logical_not")            # select(!p, x, y) -> select(p, y, x)
    if inner is not None:
        return same_results(op, "select", (inner.inputs[0], y, x))
    # a select under the same predicate is decided already: select(p, select(p, a, b), c)
    new_x, new_y = _decided(x, pred, 1, ctx), _decided(y, pred, 2, ctx)
    if new_x is not x or new_y is not y:
        return same_results(op, "select", (pred, new_x, new_y))
    return None


def _decided(v, pred, branch: int, ctx):
    """The branch of v = select(pred, ...) that pred picks when it picked `branch` here."""
    inner = ctx.def_of(v, "select")
    return inner.inputs[branch] if inner is not None and inner.inputs[0] is pred else v


def _complementary_selects(x, y, ctx):
    """select(p, a, 0) + select(p, 0, b) -> select(p, a, b): the cotangent of a value that
    feeds both branches of a select (leaky relu), summed. Exact but for -0.0 + 0.0."""
    sx, sy = ctx.def_of(x, "select"), ctx.def_of(y, "select")
    if sx is None or sy is None or sx.inputs[0] is not sy.inputs[0]:
        return None
    if is_value(sx.inputs[2], ctx, 0) and is_value(sy.inputs[1], ctx, 0):
        return sx.inputs[0], sx.inputs[1], sy.inputs[2]
    if is_value(sx.inputs[1], ctx, 0) and is_value(sy.inputs[2], ctx, 0):
        return sx.inputs[0], sy.inputs[1], sx.inputs[2]
    return None


def _identity(op, ctx):
    """convert to the operand's own type: the operand itself."""
    return op.inputs[0] if op.inputs[0].type == op.results[0].type else None


simplify_rules: dict[str, Rule] = {
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
    "neg": _neg,
    "logical_not": _logical_not,
    "integer_pow": _integer_pow,
    "pow": _pow,
    "convert": _identity,
    "select": _select,
    "scan": scan_rule,
    **layout_rules,
}


def simplify_rule(op: Op, ctx: Context):
    """The rule of simplify_rules for op's primitive (None: no rule, or it does not apply)."""
    rule = simplify_rules.get(op.prim.name)
    return rule(op, ctx) if rule else None


def simplify_changed(fn: Function) -> tuple[Function, bool]:
    """simplify, and whether it rewrote anything (in regions too)."""
    return rewrite(fn, simplify_rule, simplify_changed)


def simplify(fn: Function) -> Function:
    """Algebraic identities that hold exactly in IEEE arithmetic (x*1, x-0, neg(neg x),
    x + (-y) -> x - y, transpose of transpose, transposes folded into dot_general, ...)."""
    return simplify_changed(fn)[0]
