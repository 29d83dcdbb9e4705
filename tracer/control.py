"""Structured control flow: cond, fori_loop, while_loop, scan (as in jax.lax).

Each traces its Python bodies once, with fresh symbolic parameters, into closed ir
Functions (regions) and records one `cond` / `while` / `scan` op: loops are compiled as
native loops, never unrolled. A region sees only its own parameters, so the values a body
closes over (its captures: arrays, or values of an enclosing trace) become extra operands:
for `cond` extra operands of both branches, for `while` and `scan` extra loop-carried
values that the body returns unchanged. Carries, operands and outputs may be pytrees.

Called on concrete inputs outside any trace, the op is recorded lazily and computed when
read, like any other op. A captured Tensor (a parameter the body closes over) is an operand
of the op and an input of its autograd node (tracer/captures.py), so `.backward()` reaches
it as it reaches the explicit operands.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from ir import TensorType
from tracer import captures as capture_log
from tracer import record
from tracer.record import torch_op
from tracer.expr import Expr, param_expr, closed_region, region_captures
from tracer.ops.operands import user_error
from tracer.pytree import tree_flatten, tree_unflatten
from tracer.staging import as_tensor, is_array_leaf, to_expr
from tracer.tensor import Tensor
from tracer.tracing import tracing

__all__ = ["cond", "fori_loop", "while_loop", "scan"]


# ---- tracing a body into a region ----------------------------------------------------------

def _fresh(types: list[TensorType], hints=None) -> list[Expr]:
    hints = hints or [None] * len(types)
    return [param_expr(t, h) for t, h in zip(types, hints)]


def _call_body(fn, params: list[Expr], trees: list, what: str):
    """Calls a user body on Tensors over params, split into the given pytrees."""
    args, k = [], 0
    for tree in trees:
        n = tree.num_leaves
        args.append(tree_unflatten(tree, [Tensor(p) for p in params[k:k + n]]))
        k += n
    with tracing():
        return fn(*args)


def _flat_out(out, what: str) -> tuple[list[Expr], object]:
    leaves, tree = tree_flatten(out)
    exprs = []
    for x in leaves:
        try:
            exprs.append(to_expr(x))
        except TypeError:
            raise user_error(TypeError, f"{what} returned {type(x).__name__} {x!r}, which is "
                                        "not an array") from None
    return exprs, tree


def _types(exprs) -> str:
    return "(" + ", ".join(str(e.type) for e in exprs) + ")"


def _check_types(got: list[Expr], want: list[Expr], what: str):
    if [e.type for e in got] != [e.type for e in want]:
        raise user_error(TypeError, f"{what}: got types {_types(got)}, expected "
                                    f"{_types(want)}; the types must match exactly (convert "
                                    "with .to(dtype) if needed)")


def _leaves_as_tensors(tree_value) -> tuple[list[Tensor], object]:
    leaves, tree = tree_flatten(tree_value)
    return [as_tensor(x) for x in leaves], tree


def _scalar_bool(x, what: str) -> Tensor:
    t = as_tensor(x)
    if t._expr.type.shape != ():
        raise user_error(TypeError, f"{what} must be a scalar, got {t._expr.type}")
    if t._expr.type.dtype != "bool":
        zero = record.apply("constant", value=0, dtype=t._expr.type.dtype, shape=())
        t = record.apply("ne", t, zero)
    return t


def _capture_operands(log: dict, caps: list[Expr], captured: list) -> list[Tensor]:
    """The op's operands for caps: the Tensor that holds each (appended to `captured`, which
    the autograd hook reads), or a plain Tensor over a capture no Tensor owns."""
    out = []
    for c, owner in zip(caps, capture_log.owners(log, caps)):
        if owner is not None:
            captured.append(owner)
        out.append(owner if owner is not None else Tensor(c))
    return out


def _records_captures(name: str):
    """torch_op(name) for a control-flow op whose bodies may close over Tensors.

    The implementation takes a keyword `_captured`, a list it fills with the captured
    Tensors; the autograd hook runs after it and reads that list as one more argument, so
    each captured Tensor that requires grad gets an edge of the op's node.
    """
    def wrap(impl):
        op = torch_op(name)(impl)

        def public(*args, **kwargs):
            return op(*args, _captured=[], **kwargs)
        sig = inspect.signature(impl)
        public.__signature__ = sig.replace(parameters=[
            p for p in sig.parameters.values() if p.name != "_captured"])
        functools.update_wrapper(public, impl, updated=())
        del public.__wrapped__
        public.torch_name = name
        public.__op__ = op            # for a control-flow op built on another one
        return public
    return wrap


# ---- cond ------------------------------------------------------------------------------------

@_records_captures("Cond")
def cond(pred, true_fn, false_fn, *operands, _captured: list):
    """true_fn(*operands) if pred else false_fn(*operands), as one native branch.

    Both branches are traced and must return pytrees of the same structure and types.
    Differentiable (each branch is differentiated) in forward and reverse mode.
    """
    pred_t = _scalar_bool(pred, "cond predicate")
    ops, tree = _leaves_as_tensors(operands)
    params = _fresh([t._expr.type for t in ops])
    outs, trees = [], []
    with capture_log.reading() as log:
        for branch, name in ((true_fn, "true_fn"), (false_fn, "false_fn")):
            out = _call_body(branch, params, tree.children, name)
            exprs, out_tree = _flat_out(out, f"cond {name}")
            outs.append(exprs)
            trees.append(out_tree)
    if trees[0] != trees[1]:
        raise user_error(TypeError, f"cond branches return different structures: true_fn "
                                    f"{trees[0]}, false_fn {trees[1]}")
    _check_types(outs[1], outs[0], "cond: false_fn's results differ from true_fn's")
    caps = region_captures([(params, outs[0]), (params, outs[1])])
    regions = (closed_region("true_fn", params + caps, outs[0]),
               closed_region("false_fn", params + caps, outs[1]))
    results = record.apply("cond", pred_t, *ops, *_capture_operands(log, caps, _captured),
                           regions=regions)
    return tree_unflatten(trees[0], list(results))


# ---- loop carries: weak Python scalars ------------------------------------------------------

def _carry_init(init_val) -> tuple[list[Tensor], object, list[bool]]:
    """The carry's leaves as Tensors, its structure, and which leaves were Python scalars."""
    leaves, tree = tree_flatten(init_val)
    weak = [type(x) in (int, float) for x in leaves]
    return [as_tensor(x) for x in leaves], tree, weak


def _promote_weak(carry: list[Tensor], weak: list[bool], outs: list[Expr]):
    """Carries that started as Python scalars take the dtype the body gives them (as JAX's
    weak types: `scan(f, 0.0, xs_f64)` carries f64). Returns the new carry, or None."""
    changed, new = False, []
    for t, w, o in zip(carry, weak, outs):
        ct = t._expr.type
        if w and o.type.shape == ct.shape and o.type.dtype != ct.dtype:
            t = record.apply("convert", t, dtype=o.type.dtype)
            changed = True
        new.append(t)
    return new if changed else None


# ---- while_loop ---------------------------------------------------------------------------

@_records_captures("WhileLoop")
def while_loop(cond_fun, body_fun, init_val, *, _captured: list):
    """Repeats `val = body_fun(val)` while `cond_fun(val)`; returns the final val.

    Forward only: reverse-mode differentiation through a while loop is an error (the trip
    count is not known when the adjoint is built); use fori_loop with static bounds or scan.
    """
    init, tree, weak = _carry_init(init_val)
    with capture_log.reading() as log:
        bparams, body_out = _trace_while_body(body_fun, init, tree)
        promoted = _promote_weak(init, weak, body_out)
        if promoted is not None:
            init = promoted
            bparams, body_out = _trace_while_body(body_fun, init, tree)
        init_exprs = [t._expr for t in init]
        _check_types(body_out, init_exprs, "while_loop body_fun must return the carry's types")
        cparams = _fresh([e.type for e in init_exprs])
        pred = _scalar_bool(_call_body(cond_fun, cparams, [tree], "cond_fun"),
                            "while_loop cond_fun")
    caps = region_captures([(cparams, [pred._expr]), (bparams, body_out)])
    regions = (closed_region("cond_fun", cparams + caps, [pred._expr]),
               closed_region("body_fun", bparams + caps, body_out + caps))
    results = record.apply("while", *init, *_capture_operands(log, caps, _captured),
                           regions=regions)
    return tree_unflatten(tree, list(results[:len(init)]))


def _trace_while_body(body_fun, init: list[Tensor], tree):
    bparams = _fresh([t._expr.type for t in init])
    body_out, body_tree = _flat_out(_call_body(body_fun, bparams, [tree], "body_fun"),
                                    "while_loop body_fun")
    if body_tree != tree:
        raise user_error(TypeError, f"while_loop body_fun returned structure {body_tree}, "
                                    f"expected {tree} (the structure of init_val)")
    return bparams, body_out


# ---- scan ------------------------------------------------------------------------------------

@_records_captures("Scan")
def scan(f, init, xs=None, length: int | None = None, reverse: bool = False, *,
         _captured: list):
    """`carry, y = f(carry, x)` over the leading axis of xs; returns (carry, stacked ys).

    Args:
        f: (carry, x) -> (carry, y); carry and y may be pytrees, y may be None.
        init: the initial carry (a pytree of arrays).
        xs: a pytree of arrays sharing a leading axis of the trip count, or None.
        length: the trip count when xs is None (or to check it).
        reverse: iterate from the last element to the first (ys stay in index order).
    """
    carry, ctree, weak = _carry_init(init)
    xs_t, xtree = _leaves_as_tensors(xs)
    length = _scan_length(xs_t, length)
    with capture_log.reading() as log:
        traced = _trace_scan_body(f, carry, ctree, xs_t, xtree)
        promoted = _promote_weak(carry, weak, traced[1])
        if promoted is not None:
            carry = promoted
            traced = _trace_scan_body(f, carry, ctree, xs_t, xtree)
    params, carry_out, ys, ytree = traced
    _check_types(carry_out, [t._expr for t in carry], "scan body must return the carry's types")
    cparams, xparams = params[:len(carry)], params[len(carry):]
    caps = region_captures([(params, carry_out + ys)])
    body = closed_region("scan_body", cparams + caps + xparams, carry_out + caps + ys)
    results = record.apply("scan", *carry, *_capture_operands(log, caps, _captured), *xs_t,
                           regions=(body,),
                           num_carry=len(carry) + len(caps), length=length,
                           reverse=bool(reverse))
    final = tree_unflatten(ctree, list(results[:len(carry)]))
    stacked = tree_unflatten(ytree, list(results[len(carry) + len(caps):]))
    return final, stacked


def _trace_scan_body(f, carry: list[Tensor], ctree, xs: list[Tensor], xtree):
    """Calls f on fresh params; returns (carry + x params, carry out, ys, ys structure)."""
    x_types = [t._expr.type.with_shape(t._expr.type.shape[1:]) for t in xs]
    params = _fresh([t._expr.type for t in carry] + x_types)
    out = _call_body(f, params, [ctree, xtree], "scan body")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise user_error(TypeError, "scan body must return a pair (carry, y), got "
                                    f"{type(out).__name__}")
    carry_out, out_tree = _flat_out(out[0], "scan body (carry)")
    if out_tree != ctree:
        raise user_error(TypeError, f"scan body returned a carry of structure {out_tree}, "
                                    f"expected {ctree}")
    ys, ytree = _flat_out(out[1], "scan body (y)")
    return params, carry_out, ys, ytree


def _scan_length(xs: list[Tensor], length) -> int:
    sizes = set()
    for t in xs:
        if t._expr.type.ndim == 0:
            raise user_error(TypeError, "scan: xs leaves need a leading axis to scan over, "
                                        f"got {t._expr.type}")
        sizes.add(t._expr.type.shape[0])
    if length is not None:
        sizes.add(int(length))
    if not sizes:
        raise user_error(TypeError, "scan needs xs or length to know the trip count")
    if len(sizes) > 1:
        raise user_error(ValueError, f"scan: inconsistent lengths {sorted(sizes)} (xs leading "
                                     "axes, length)")
    return sizes.pop()


# ---- fori_loop -------------------------------------------------------------------------------

def _is_static_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


@_records_captures("ForiLoop")
def fori_loop(lower, upper, body_fun, init_val, *, _captured: list):
    """`for i in range(lower, upper): val = body_fun(i, val)`; returns val.

    With Python int bounds the loop is a scan over the index (trip count known, so it is
    differentiable in reverse mode); with traced bounds it is a while loop (forward only).
    `i` is an i32 scalar.
    """
    if _is_static_int(lower) and _is_static_int(upper):
        lo, hi = int(lower), int(upper)
        if hi <= lo:
            return init_val
        index = record.apply("iota", dtype="i32", shape=(hi - lo,), dim=0)
        if lo:
            index = record.apply("add", index, record.apply(
                "constant", value=lo, dtype="i32", shape=(hi - lo,)))
        carry, _ = scan.__op__(lambda val, i: (body_fun(i, val), None), init_val, index,
                               _captured=_captured)
        return carry
    lo_t, hi_t = _index(lower), _index(upper)

    def step(state):
        i, val = state
        one = record.apply("constant", value=1, dtype="i32", shape=())
        return record.apply("add", i, one), body_fun(i, val)

    _, val = while_loop.__op__(lambda s: record.apply("lt", s[0], hi_t), step,
                               (lo_t, init_val), _captured=_captured)
    return val


def _index(x) -> Tensor:
    t = as_tensor(np.int32(x) if _is_static_int(x) else x)
    if t._expr.type.shape != () or t._expr.type.dtype not in ("i32", "i64"):
        raise user_error(TypeError, "fori_loop bounds must be integer scalars, got "
                                    f"{t._expr.type}")
    if t._expr.type.dtype != "i32":
        t = record.apply("convert", t, dtype="i32")
    return t


# ---- checkpoint (rematerialisation) -------------------------------------------------------

@_records_captures("CheckpointFunction")
def remat(f, *args, _captured: list, **kwargs):
    """f(*args, **kwargs) recorded as one region that reverse mode recomputes.

    The region is the taken branch of a `cond` on a constant true predicate (the other
    branch returns zeros): the VJP of cond differentiates each branch by recomputing its
    primal inside the adjoint, so nothing computed inside f is kept for the backward pass,
    only f's inputs. Static (non-array) arguments are passed through unchanged.
    """
    leaves, tree = tree_flatten((args, kwargs))
    arrays = [as_tensor(x) for x in leaves if is_array_leaf(x)]
    params = _fresh([t._expr.type for t in arrays])
    it = iter(Tensor(p) for p in params)
    a, k = tree_unflatten(tree, [next(it) if is_array_leaf(x) else x for x in leaves])
    with tracing(), capture_log.reading() as log:
        outs, out_tree = _flat_out(f(*a, **k), "checkpointed function")
    caps = region_captures([(params, outs)])
    zeros = [record.apply("constant", value=0, dtype=e.type.dtype, shape=e.type.shape)._expr
             for e in outs]
    regions = (closed_region("remat", params + caps, outs),
               closed_region("skipped", params + caps, zeros))
    pred = record.apply("constant", value=True, dtype="bool", shape=())
    results = record.apply("cond", pred, *arrays, *_capture_operands(log, caps, _captured),
                           regions=regions)
    return tree_unflatten(out_tree, list(results))
