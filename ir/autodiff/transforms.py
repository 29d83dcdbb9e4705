"""The autodiff transforms: vjp, jvp and grad rewrite a Function into another Function.

    vjp(fn)  -> params (*fn.params, *cotangents of fn's float results)
                results (*fn.results, *cotangents of the wrt params)
    jvp(fn)  -> params (*fn.params, *tangents of the wrt params)
                results (*fn.results, *tangents of fn's float results)
    grad(fn) -> params fn.params, results (value, *gradients)   for a scalar float fn

The output is ordinary IR (the primal body, then the derivative ops), so it can be printed,
optimised, compiled and differentiated again. Only values that depend on a wrt parameter
are differentiated ("active"); a zero derivative is None while building and is
materialised only where a result needs it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ir.autodiff.common import zeros
from ir.autodiff.dce import dce_ops
from ir.autodiff.jvp_rules import jvp_rules
from ir.autodiff.vjp_rules import vjp_rules
from ir.builder import Builder
from ir.core import Function, Op, Value, is_float
from ir.printer import print_op

# Control ops that do better than their plain rule (registered by ir/autodiff/control.py):
# vjp_tape_rules[name] = (forward, adjoint): forward(b, *inputs, **params) -> (outs, tape)
#   replaces the primal op and also saves what the adjoint needs; adjoint(b, g, out, tape,
#   *inputs, **params) -> cotangents.
# jvp_fused_rules[name](b, ts, *inputs, **params) -> (outs, tangents) computes both at once.
vjp_tape_rules: dict = {}
jvp_fused_rules: dict = {}


# ---- copying -----------------------------------------------------------------------------

def clone_function(fn: Function, name: str | None = None) -> Function:
    """A copy of fn with fresh Values throughout (regions included)."""
    params = [Value(p.type, p.name_hint) for p in fn.params]
    b = Builder()
    env = copy_body(b, fn, params)
    return Function(name or fn.name, params, b.ops, [env[r] for r in fn.results])


def copy_op(b: Builder, op: Op, inputs) -> tuple[Value, ...]:
    """Appends a copy of op applied to inputs. Regions are cloned, not shared: a transform's
    output then defines each Value once in its whole tree (a rule may differentiate the same
    region several times), so maps keyed by Value over walk_ops stay unambiguous."""
    results = tuple(Value(r.type, r.name_hint) for r in op.results)
    regions = tuple(clone_function(r) for r in op.regions)
    b.ops.append(Op(op.prim, tuple(inputs), results, dict(op.params), regions, op.loc))
    return results


def copy_body(b: Builder, fn: Function, args) -> dict:
    """Copies fn's body applied to args; returns the map from fn's values to the copies."""
    env = dict(zip(fn.params, args))
    for op in fn.body:
        env.update(zip(op.results, copy_op(b, op, [env[v] for v in op.inputs])))
    return env


def _hint(prefix: str, v: Value) -> str:
    return f"{prefix}_{v.name_hint}" if v.name_hint else prefix


def _kwargs(op: Op) -> dict:
    return dict(op.params, regions=op.regions) if op.regions else dict(op.params)


def check_wrt(fn: Function, wrt, transform: str) -> tuple[int, ...]:
    """Normalises wrt (None: every float param) and checks it names float params."""
    if wrt is None:
        return tuple(i for i, p in enumerate(fn.params) if is_float(p.dtype))
    wrt = (wrt,) if isinstance(wrt, int) else tuple(wrt)
    if len(set(wrt)) != len(wrt):
        raise ValueError(f"{transform}: repeated index in wrt={wrt}")
    for i in wrt:
        if not isinstance(i, int) or not -len(fn.params) <= i < len(fn.params):
            raise ValueError(f"{transform}: wrt index {i!r} out of range for @{fn.name}, "
                             f"which has {len(fn.params)} parameters")
        p = fn.params[i]
        if not is_float(p.dtype):
            name = f"%{p.name_hint}" if p.name_hint else f"parameter {i}"
            raise TypeError(f"{transform}: cannot differentiate @{fn.name} with respect to "
                            f"{name} of type {p.type}: only f32/f64 parameters have derivatives")
    return tuple(i % len(fn.params) for i in wrt)


# ---- reverse mode ------------------------------------------------------------------------

@dataclass
class Joint:
    """A function's primal and adjoint ops, before dead-code elimination.

    ops[:n_primal] copy fn's body (tape rules may have replaced a control op by its taped
    form); the rest compute the cotangents. params copy fn's params; ct_params are the
    cotangents of the results picked by ct_mask; grads are the cotangents of the wrt params.
    """
    params: list[Value]
    ct_params: list[Value]
    ops: list[Op]
    n_primal: int
    primal_results: list[Value]
    grads: list[Value]


def vjp_joint(fn: Function, wrt, ct_mask=None) -> Joint:
    """The primal and adjoint ops of fn (see Joint); wrt must be checked already.

    ct_mask[i] says whether result i gets a cotangent parameter (default: every float
    result).
    """
    if ct_mask is None:
        ct_mask = [is_float(r.dtype) for r in fn.results]
    b = Builder()
    params = [Value(p.type, p.name_hint) for p in fn.params]
    env, active, tapes = _forward(b, fn, params, {fn.params[i] for i in wrt})
    n_primal = len(b.ops)
    seeds = [r for r, m in zip(fn.results, ct_mask) if m]
    ct_params = [Value(r.type, _hint("g", r)) for r in seeds]
    ct: dict[Value, Value] = {}
    for r, c in zip(seeds, ct_params):
        if r in active:
            _accumulate(b, ct, r, c)
    _backward(b, fn, env, active, tapes, ct)
    b.loc = None
    grads = [ct[fn.params[i]] if fn.params[i] in ct else zeros(b, fn.params[i].type)
             for i in wrt]
    return Joint(params, ct_params, b.ops, n_primal, [env[r] for r in fn.results], grads)


def vjp_function(fn: Function, wrt, ct_mask=None, keep_primal: bool = True,
                 name: str | None = None) -> Function:
    """The reverse-mode function of fn (see vjp); wrt must be checked already.

    ct_mask[i] says whether result i gets a cotangent parameter (default: every float
    result). keep_primal=False returns only the cotangents and drops primal ops they do not
    need (for the regions of control ops, which recompute their primal).
    """
    j = vjp_joint(fn, wrt, ct_mask)
    results = (j.primal_results if keep_primal else []) + j.grads
    protected = frozenset(j.ops[:j.n_primal]) if keep_primal else frozenset()
    body = dce_ops(j.ops, results, protected)
    return Function(name or f"{fn.name}_vjp", j.params + j.ct_params, body, results)


def _forward(b: Builder, fn: Function, params, active: set):
    """Copies the primal body; active ops with a tape rule save their residuals."""
    env = dict(zip(fn.params, params))
    tapes = {}
    for op in fn.body:
        inputs = [env[v] for v in op.inputs]
        is_active = any(v in active for v in op.inputs)
        if is_active and op.prim.name in vjp_tape_rules:
            b.loc = op.loc
            forward, _ = vjp_tape_rules[op.prim.name]
            outs, tapes[op] = forward(b, *inputs, **_kwargs(op))
        else:
            outs = copy_op(b, op, inputs)
        env.update(zip(op.results, outs))
        if is_active:
            active.update(r for r in op.results if is_float(r.dtype))
    return env, active, tapes


def _backward(b: Builder, fn: Function, env, active, tapes, ct):
    """Walks the body backwards, turning result cotangents into operand cotangents."""
    for op in reversed(fn.body):
        if not any(v in active for v in op.inputs):
            continue
        gs = tuple(ct.pop(r, None) for r in op.results)
        if all(g is None for g in gs):
            continue
        b.loc = op.loc
        cts = _apply_vjp_rule(b, op, gs, env, tapes.get(op))
        for v, c in zip(op.inputs, cts):
            if c is not None and v in active:
                _accumulate(b, ct, v, c)


def _apply_vjp_rule(b: Builder, op: Op, gs, env, tape):
    name = op.prim.name
    inputs = [env[v] for v in op.inputs]
    outs = tuple(env[r] for r in op.results)
    if tape is not None:
        cts = vjp_tape_rules[name][1](b, gs, outs, tape, *inputs, **_kwargs(op))
    elif name not in vjp_rules:
        raise NotImplementedError(f"no VJP rule for primitive '{name}' (in: {print_op(op)})")
    elif op.prim.kind == "control" or len(op.results) > 1:   # tuples of gs and outs
        cts = vjp_rules[name](b, gs, outs, *inputs, **_kwargs(op))
    else:
        cts = vjp_rules[name](b, gs[0], outs[0], *inputs, **_kwargs(op))
    if len(cts) != len(inputs):
        raise TypeError(f"VJP rule of '{name}' gave {len(cts)} cotangents for "
                        f"{len(inputs)} operands (in: {print_op(op)})")
    for i, (c, x) in enumerate(zip(cts, inputs)):
        if c is not None and c.type != x.type:
            raise TypeError(f"VJP rule of '{name}' gave a {c.type} cotangent for operand {i} "
                            f"of type {x.type} (in: {print_op(op)})")
    return cts


def _accumulate(b: Builder, ct: dict, v: Value, c: Value):
    """Sums the cotangents of a value with several uses."""
    ct[v] = b.add(ct[v], c) if v in ct else c


def vjp(fn: Function, wrt=None) -> Function:
    """Reverse mode: fn's results and the cotangents of the wrt params, as one Function.

    Args:
        fn: the function to differentiate.
        wrt: indices of the params to differentiate (default: every float param).
    Returns:
        @{fn.name}_vjp with params (*fn.params, one cotangent per float result of fn) and
        results (*fn.results, one cotangent per wrt param, in wrt order).
    Raises:
        TypeError: a wrt param is not floating-point, or fn contains a `while` that depends
            on a wrt param (reverse mode needs a static trip count: use scan).
    """
    return vjp_function(fn, check_wrt(fn, wrt, "vjp"), name=f"{fn.name}_vjp")


# ---- forward mode ------------------------------------------------------------------------

def jvp_function(fn: Function, wrt, name: str | None = None) -> Function:
    """The forward-mode function of fn (see jvp); wrt must be checked already."""
    b = Builder()
    params = [Value(p.type, p.name_hint) for p in fn.params]
    t_params = [Value(fn.params[i].type, _hint("t", fn.params[i])) for i in wrt]
    env = dict(zip(fn.params, params))
    tan = dict(zip((fn.params[i] for i in wrt), t_params))
    primal_ops = []
    for op in fn.body:
        inputs = [env[v] for v in op.inputs]
        ts = tuple(tan.get(v) for v in op.inputs)
        b.loc = op.loc
        if all(t is None for t in ts):
            outs, touts = copy_op(b, op, inputs), ()
            primal_ops.append(b.ops[-1])
        elif op.prim.name in jvp_fused_rules:
            start = len(b.ops)
            outs, touts = jvp_fused_rules[op.prim.name](b, ts, *inputs, **_kwargs(op))
            primal_ops += b.ops[start:]
        else:
            outs = copy_op(b, op, inputs)
            primal_ops.append(b.ops[-1])
            touts = _apply_jvp_rule(b, op, ts, inputs, outs)
        env.update(zip(op.results, outs))
        tan.update((r, t) for r, t in zip(op.results, touts) if t is not None)
    b.loc = None
    tangents = [tan[r] if r in tan else zeros(b, r.type)
                for r in fn.results if is_float(r.dtype)]
    results = [env[r] for r in fn.results] + tangents
    body = dce_ops(b.ops, results, frozenset(primal_ops))
    return Function(name or f"{fn.name}_jvp", params + t_params, body, results)


def _apply_jvp_rule(b: Builder, op: Op, ts, inputs, outs) -> tuple:
    name = op.prim.name
    if name not in jvp_rules:
        raise NotImplementedError(f"no JVP rule for primitive '{name}' (in: {print_op(op)})")
    if op.prim.kind == "control" or len(op.results) > 1:
        touts = tuple(jvp_rules[name](b, ts, outs, *inputs, **_kwargs(op)))
    else:
        touts = (jvp_rules[name](b, ts, outs[0], *inputs, **_kwargs(op)),)
    for i, (t, r) in enumerate(zip(touts, outs)):
        if t is not None and (t.type != r.type or not is_float(r.dtype)):
            raise TypeError(f"JVP rule of '{name}' gave a {t.type} tangent for result {i} "
                            f"of type {r.type} (in: {print_op(op)})")
    return touts


def jvp(fn: Function, wrt=None) -> Function:
    """Forward mode: fn's results and their tangents along the wrt params' tangents.

    Args:
        fn: the function to differentiate.
        wrt: indices of the params that get a tangent (default: every float param).
    Returns:
        @{fn.name}_jvp with params (*fn.params, one tangent per wrt param) and results
        (*fn.results, one tangent per float result; a zeros constant where independent).
    Raises:
        TypeError: a wrt param is not floating-point.
    """
    return jvp_function(fn, check_wrt(fn, wrt, "jvp"), name=f"{fn.name}_jvp")


# ---- grad --------------------------------------------------------------------------------

def grad(fn: Function, wrt=None) -> Function:
    """The value and gradient of a scalar function: results (value, *grads).

    It is the vjp of fn inlined with a constant 1 as the seed cotangent.

    Raises:
        TypeError: fn does not return exactly one scalar f32/f64 value, or a wrt param is
            not floating-point.
    """
    types = fn.result_types
    if len(types) != 1 or not is_float(types[0].dtype) or types[0].shape != ():
        got = ", ".join(map(str, types)) or "nothing"
        raise TypeError(f"grad needs a function returning one scalar float (f32[] or f64[]); "
                        f"@{fn.name} returns ({got})")
    vjp_fn = vjp_function(fn, check_wrt(fn, wrt, "grad"), name=f"{fn.name}_vjp")
    params = [Value(p.type, p.name_hint) for p in fn.params]
    b = Builder()
    seed = b.const(1, types[0].dtype)
    results = b.inline(vjp_fn, params + [seed])
    return Function(f"{fn.name}_grad", params, b.ops, results)
