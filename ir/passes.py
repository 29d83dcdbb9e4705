"""Optimisation passes: dce, cse, simplify, fold, and optimize (all of them to a fixed point).

Every pass returns a new Function and never mutates its input. Value identity is kept:
the output's params are the input's params, a kept op keeps its result Values, and an op
rewritten in place (say pow -> integer_pow) defines the same result Values as before, so
name hints survive. An op replaced by an existing value has its results renamed to that
value in every later use, including the function's results. Regions are closed, so each
one is optimised on its own, recursively.
"""
from __future__ import annotations

from typing import Callable

from ir.core import FLOAT_DTYPES, INT_DTYPES, Function, Op, Value
from ir.interpret import eval_op
from ir.primitives import FLOAT_UNARY, PRIMITIVES
from ir.printer import print_function

MAX_FOLD_ELEMENTS = 16       # fold only results this small: constants are stored inline
MAX_OPTIMIZE_ROUNDS = 10


# ---- the rewriting driver ------------------------------------------------------------------

class _Context:
    """The function being rebuilt: its ops so far, the op defining each value, the renaming."""

    def __init__(self):
        self.ops: list[Op] = []
        self.defs: dict[Value, Op] = {}
        self.env: dict[Value, Value] = {}

    def def_of(self, v: Value, prim: str | None = None) -> Op | None:
        op = self.defs.get(v)
        return op if op is not None and (prim is None or op.prim.name == prim) else None


# A rule sees an op (operands already renamed) and returns None to keep it, an Op that
# defines the same results instead, or the existing Value(s) that replace its results.
Rule = Callable[[Op, _Context], object]


def _shared(region_pass: Callable[[Function], Function]) -> Callable[[Function], Function]:
    """region_pass, run once per distinct region, so regions shared in the input (as
    Builder.inline shares them) stay shared in the output."""
    done: dict[int, tuple[Function, Function]] = {}

    def run(region: Function) -> Function:
        if id(region) not in done:
            done[id(region)] = (region, region_pass(region))    # keep region alive: id stable
        return done[id(region)][1]
    return run


def _rewrite(fn: Function, rule: Rule, region_pass: Callable[[Function], Function]) -> Function:
    ctx = _Context()
    region_pass = _shared(region_pass)
    for op in fn.body:
        op = Op(op.prim, tuple(ctx.env.get(v, v) for v in op.inputs), op.results,
                dict(op.params), tuple(region_pass(r) for r in op.regions), op.loc)
        out = rule(op, ctx)
        if out is None or isinstance(out, Op):
            out = out or op
            ctx.ops.append(out)
            ctx.defs.update((r, out) for r in out.results)
        else:
            values = (out,) if isinstance(out, Value) else tuple(out)
            ctx.env.update(zip(op.results, values))
    results = [ctx.env.get(r, r) for r in fn.results]
    return Function(fn.name, list(fn.params), ctx.ops, results)


def _same_results(op: Op, prim: str, inputs, **params) -> Op:
    """A new op computing op's results another way; it defines the very same Values."""
    new = Op(PRIMITIVES[prim], tuple(inputs), op.results, params, (), op.loc)
    inferred = new.prim.infer([v.type for v in new.inputs], params)
    assert list(inferred) == [r.type for r in op.results], f"rewrite changed the type of {op}"
    return new


# ---- dce -------------------------------------------------------------------------------

def dce(fn: Function) -> Function:
    """Drops ops none of whose results are used (all primitives are pure); recurses into
    the regions of the ops it keeps."""
    live = set(fn.results)
    kept = []
    region_pass = _shared(dce)
    for op in reversed(fn.body):
        if not any(r in live for r in op.results):
            continue
        live.update(op.inputs)
        kept.append(Op(op.prim, op.inputs, op.results, dict(op.params),
                       tuple(region_pass(r) for r in op.regions), op.loc))
    kept.reverse()
    return Function(fn.name, list(fn.params), kept, list(fn.results))


# ---- cse -------------------------------------------------------------------------------

COMMUTATIVE = frozenset({"add", "mul", "eq", "ne", "logical_and", "logical_or"})


def _freeze(v):
    """A hashable key that tells apart what == confuses: 0.0/-0.0, 1/True/1.0; nan == nan."""
    if isinstance(v, (tuple, list)):
        return ("tuple",) + tuple(_freeze(e) for e in v)
    if isinstance(v, dict):
        return ("dict",) + tuple(sorted((k, _freeze(e)) for k, e in v.items()))
    return (type(v).__name__, repr(v))


def cse(fn: Function) -> Function:
    """Reuses the first of several region-free ops with the same primitive, operands and
    params (equal constants are merged); recurses into regions."""
    first: dict[tuple, Op] = {}

    def rule(op: Op, ctx: _Context):
        if op.regions:
            return None
        operands = [id(v) for v in op.inputs]
        if op.prim.name in COMMUTATIVE:
            operands.sort()
        key = (op.prim.name, tuple(operands), _freeze(op.params))
        if key in first:
            return first[key].results
        first[key] = op
        return None

    return _rewrite(fn, rule, cse)


# ---- simplify --------------------------------------------------------------------------

def _splat(v: Value, ctx: _Context):
    """The scalar every element of v equals, if v is a known constant (None otherwise).
    Looks through broadcast_in_dim and reshape, as the tracer broadcasts scalar constants."""
    op = ctx.def_of(v)
    if op is None:
        return None
    if op.prim.name in ("broadcast_in_dim", "reshape"):
        return _splat(op.inputs[0], ctx)
    if op.prim.name != "constant":
        return None
    value = op.params["value"]
    if not isinstance(value, tuple):
        return value
    flat = _flatten(value)
    keys = {_freeze(e) for e in flat}
    return flat[0] if len(keys) == 1 else None


def _flatten(value) -> list:
    if not isinstance(value, tuple):
        return [value]
    return [e for item in value for e in _flatten(item)]


def _is(v: Value, ctx: _Context, scalar) -> bool:
    s = _splat(v, ctx)
    return s is not None and not isinstance(s, bool) and s == scalar


def _add(op, ctx):
    # NOTE: x + 0.0 -> x differs only for x = -0.0 (IEEE gives +0.0); like XLA we accept that
    x, y = op.inputs
    if _is(y, ctx, 0):
        return x
    if _is(x, ctx, 0):
        return y
    return None


def _mul(op, ctx):
    x, y = op.inputs
    if _is(y, ctx, 1):
        return x
    if _is(x, ctx, 1):
        return y
    # x * 0 is not 0 for floats (nan, inf, -0.0), only for integers
    if x.dtype in INT_DTYPES:
        for zero in (x, y):
            if _is(zero, ctx, 0):
                return zero
    return None


def _involution(op, ctx):
    """neg(neg x) -> x, logical_not(logical_not x) -> x."""
    inner = ctx.def_of(op.inputs[0], op.prim.name)
    return inner.inputs[0] if inner is not None else None


def _integer_pow(op, ctx):
    (x,), n = op.inputs, op.params["n"]
    if n == 1:
        return x
    if n == 0:
        # x**0 is 1 for every x, nan and inf included (IEEE pow)
        one = 1.0 if x.dtype in FLOAT_DTYPES else 1
        return _same_results(op, "constant", (), value=one, dtype=x.dtype, shape=x.shape)
    return None


def _pow(op, ctx):
    x, y = op.inputs
    if _is(y, ctx, 1.0):
        return x
    if _is(y, ctx, 2.0):
        return _same_results(op, "integer_pow", (x,), n=2)
    return None


def _reshape(op, ctx):
    x, shape = op.inputs[0], tuple(op.params["shape"])
    inner = ctx.def_of(x, "reshape")
    if inner is not None:
        x = inner.inputs[0]
    if x.shape == shape:
        return x
    return _same_results(op, "reshape", (x,), shape=shape) if inner is not None else None


def _transpose(op, ctx):
    x, perm = op.inputs[0], tuple(op.params["perm"])
    inner = ctx.def_of(x, "transpose")
    if inner is not None:
        # out axis i is inner axis perm[i], which is x axis inner_perm[perm[i]]
        x, perm = inner.inputs[0], tuple(inner.params["perm"][p] for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    return _same_results(op, "transpose", (x,), perm=perm) if inner is not None else None


def _select(op, ctx):
    pred, x, y = op.inputs
    if x is y:
        return x
    p = _splat(pred, ctx)
    if isinstance(p, bool):
        return x if p else y
    return None


def _identity(op, ctx):
    """broadcast_in_dim / convert to the operand's own type: the operand itself."""
    return op.inputs[0] if op.inputs[0].type == op.result.type else None


simplify_rules: dict[str, Rule] = {
    "add": _add,
    "sub": lambda op, ctx: op.inputs[0] if _is(op.inputs[1], ctx, 0) else None,
    "mul": _mul,
    "div": lambda op, ctx: op.inputs[0] if _is(op.inputs[1], ctx, 1) else None,
    "neg": _involution,
    "logical_not": _involution,
    "integer_pow": _integer_pow,
    "pow": _pow,
    "broadcast_in_dim": _identity,
    "reshape": _reshape,
    "transpose": _transpose,
    "convert": _identity,
    "select": _select,
}


def simplify(fn: Function) -> Function:
    """Algebraic identities that hold exactly in IEEE arithmetic (x*1, x-0, neg(neg x),
    transpose of transpose, ...); x*0 is folded for integers only."""
    def rule(op: Op, ctx: _Context):
        simplify_rule = simplify_rules.get(op.prim.name)
        return simplify_rule(op, ctx) if simplify_rule else None

    return _rewrite(fn, rule, simplify)


# ---- fold ------------------------------------------------------------------------------

# Evaluated with the reference interpreter's rules, so folding means what running means.
FOLDABLE = frozenset(FLOAT_UNARY) | frozenset({
    "neg", "abs", "sign", "integer_pow", "logical_not", "convert",
    "add", "sub", "mul", "div", "max", "min", "pow", "logical_and", "logical_or",
    "lt", "le", "gt", "ge", "eq", "ne", "select",
    "broadcast_in_dim", "reshape", "transpose",
})


def _constant_op(op: Op, array) -> Op:
    """A constant defining op's result with the value of array (splat when uniform)."""
    t = op.result.type
    flat = array.reshape(-1)
    # NOTE: compare bytes, so that -0.0 and 0.0 differ and nan equals nan
    uniform = flat.size and flat.tobytes() == flat[:1].repeat(flat.size).tobytes()
    value = flat[0].item() if uniform else _to_tuple(array.tolist())
    return Op(PRIMITIVES["constant"], (), op.results,
              {"value": value, "dtype": t.dtype, "shape": t.shape}, (), op.loc)


def _to_tuple(v):
    return tuple(_to_tuple(e) for e in v) if isinstance(v, list) else v


def fold(fn: Function) -> Function:
    """Replaces an op whose operands are all constants and whose result has at most
    MAX_FOLD_ELEMENTS elements by the constant it computes (IEEE semantics: 1/0 -> inf)."""
    def rule(op: Op, ctx: _Context):
        if op.prim.name not in FOLDABLE or not 0 < op.result.type.size <= MAX_FOLD_ELEMENTS:
            return None
        consts = [ctx.def_of(v, "constant") for v in op.inputs]
        if any(c is None for c in consts):
            return None
        args = [eval_op(c, [])[0] for c in consts]
        return _constant_op(op, eval_op(op, args)[0])

    return _rewrite(fn, rule, fold)


# ---- the pipeline ----------------------------------------------------------------------

def optimize(fn: Function, max_rounds: int = MAX_OPTIMIZE_ROUNDS) -> Function:
    """fold, simplify, cse, dce, repeated until the printed function stops changing."""
    text = print_function(fn)
    for _ in range(max_rounds):
        fn = dce(cse(simplify(fold(fn))))
        new_text = print_function(fn)
        if new_text == text:
            break
        text = new_text
    return fn
