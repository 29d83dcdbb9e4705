"""Expr: the immutable SSA value behind every Tensor, in one lazy graph for both fronts.

An Expr is one of:
  - data:      a realised NumPy array (imperative leaves, realised intermediates);
  - a param:   a symbolic placeholder of a function being traced (`symbolic` is True);
  - computed:  the result of `op` (an ir.Op) applied to `args` (Exprs), not yet realised.

Tensors are mutable handles (in-place ops point them at a new Expr); Exprs never change,
except that a computed Expr may have its `data` filled in once it is realised. The graph is
kept alive only by the Exprs that live Tensors reference, as PyTorch's autograd graph is.

`build_function` cuts a Function out of this graph: from the wanted Exprs back to leaves.
Leaves with data become parameters (never constants), so a function's structure (the
compile-cache key) does not depend on the data: a training loop compiles once.
"""
from __future__ import annotations

import weakref

import numpy as np

from ir import Builder, Function, Op, TensorType, Value
from ir.core import DTYPES, dtype_of_numpy


class Expr:
    # recorded: an output of an autograd node or a view (tracer/autograd), whose op must
    # stay known after it is realised; any other Expr forgets its op and args once it holds
    # data (see settle), so a loop of updates does not keep its whole history alive
    __slots__ = ("value", "op", "args", "data", "symbolic", "recorded", "__weakref__")

    def __init__(self, value: Value, op: Op | None = None, args: tuple = (),
                 data: np.ndarray | None = None, symbolic: bool = False):
        self.value = value
        self.op = op
        self.args = args
        self.data = data
        self.symbolic = symbolic
        self.recorded = False

    @property
    def type(self) -> TensorType:
        return self.value.type

    @property
    def is_leaf_param(self) -> bool:
        return self.op is None and self.data is None

    def __repr__(self) -> str:
        kind = "data" if self.data is not None else (
            "param" if self.op is None else self.op.prim.name)
        return f"<Expr {kind}: {self.type}>"


def settle(e: Expr, array: np.ndarray):
    """Stores e's realised value; unless autograd still needs e's op, e becomes a data leaf
    (its op and arguments are dropped, so they can be freed)."""
    e.data = array
    if not e.recorded:
        e.op = None
        e.args = ()


def live_siblings(e: Expr, seen: set) -> list[Expr]:
    """The other live, pending, recorded results of e's op when it has several (an RNN
    node's final state beside its outputs), whose ids are not in seen (added to it).
    realize and backward compute them along: else a loop that carries them (`h =
    h.detach()` each batch) recomputes their whole history every step. Only recorded ones
    (autograd node outputs): settling keeps their op, so a node's graph through them stays
    whole (settling an unrecorded one would cut it and zero gradients)."""
    out = []
    for ref in getattr(e.op, "exprs", ()):
        s = ref()
        if s is not None and s.recorded and id(s) not in seen and s.data is None \
                and not s.symbolic:
            seen.add(id(s))
            out.append(s)
    return out


def data_expr(array: np.ndarray) -> Expr:
    # NOTE: not np.ascontiguousarray, which turns a 0-d array into shape (1,)
    array = np.asarray(array)
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    key = (array.dtype, array.shape)
    t = _DATA_TYPES.get(key)
    if t is None:
        if len(_DATA_TYPES) >= 4096:
            _DATA_TYPES.clear()
        t = _DATA_TYPES[key] = TensorType(dtype_of_numpy(array.dtype), array.shape)
    return Expr(Value(t), data=array)


# (NumPy dtype, shape) -> TensorType: every realised array gets one (hot in a training step)
_DATA_TYPES: dict = {}


def data_exprs(arrays: list, types: list) -> list[Expr]:
    """data_expr of each of a program's result arrays, whose types the program states: an
    array that is already a C-contiguous ndarray of exactly its type keeps that type without
    keying it again (the optimizer's and the backward replay's results, every step)."""
    out = []
    for a, t in zip(arrays, types):
        dt = DTYPES[t.dtype]
        # NOTE: `is` first (NumPy's builtin dtypes are singletons), positional Expr
        # arguments: ~0.2 us less per array (the transformer's AdamW step: 45 arrays)
        if type(a) is np.ndarray and (a.dtype is dt or a.dtype == dt) and \
                a.shape == t.shape and a.flags.c_contiguous:
            out.append(Expr(Value(t), None, (), a))
        else:
            out.append(data_expr(a))
    return out


def param_expr(t: TensorType, hint: str | None = None) -> Expr:
    return Expr(Value(t, hint), symbolic=True)


# (prim, operand types, frozen params) -> (Primitive, canonical params, result types): the
# shape rule of an application already checked once (a training loop repeats the same ones)
_INFER_CACHE: dict = {}
_INFER_CACHE_LIMIT = 8192


_PLAIN = frozenset({float, int, bool, str, type(None)})


def _frozen_params(params: dict) -> tuple | None:
    """params frozen (as ir.core.freeze does; int tuples as themselves), or None when one is
    not a plain scalar or int tuple (a constant's value, say: not worth keeping in the cache).
    """
    out = []
    for k, v in params.items():
        t = type(v)
        if t is int or t is bool or t is str or v is None:
            out.append((k, (t, v)))          # what freeze gives, without the call (hot)
        elif t is float:
            out.append((k, v.hex()))
        elif t is tuple and _int_tree(v):
            out.append((k, v))                # ints hash exactly; no frozen value is one
        else:
            return None
    return tuple(out)


def _int_tree(v: tuple) -> bool:
    """v is a tuple of ints and such tuples (axes, dot_general's contract): hashes exactly."""
    for x in v:
        t = type(x)
        if t is not int and (t is not tuple or not _int_tree(x)):
            return False
    return True


def apply_op(prim: str, args: tuple, loc: str | None, regions=(), **params) -> list[Expr]:
    """Records one primitive application on Exprs; the types are checked here, eagerly.

    The op gets `frozen`: its canonical params frozen (or None), which structural keys of
    recorded graphs (tracer/autograd/replay.py) read instead of freezing them again."""
    key = None
    if not regions and type(prim) is str:
        frozen = _frozen_params(params)
        if frozen is not None:
            key = (prim, tuple([a.value.type for a in args]), frozen)
            hit = _INFER_CACHE.get(key)
            if hit is not None:
                prim_obj, canonical, types, frozen_canonical = hit
                results = tuple([Value(t) for t in types])
                op = Op(prim_obj, tuple([a.value for a in args]), results, dict(canonical),
                        (), loc)
                op.frozen = frozen_canonical
                return _results(op, args)
    b = Builder(loc)
    b.emit(prim, *(a.value for a in args), regions=regions, **params)
    (op,) = b.ops
    op.frozen = None if regions else _frozen_params(op.params)
    if key is not None:
        if len(_INFER_CACHE) >= _INFER_CACHE_LIMIT:
            _INFER_CACHE.clear()
        _INFER_CACHE[key] = (op.prim, dict(op.params), tuple([r.type for r in op.results]),
                             op.frozen)
    return _results(op, args)


def _results(op: Op, args: tuple) -> list[Expr]:
    symbolic = False
    for a in args:
        if a.symbolic:
            symbolic = True
            break
    args = tuple(args)
    exprs = [Expr(r, op, args, symbolic=symbolic) for r in op.results]
    if len(exprs) > 1:          # realize() computes live siblings along (a scan's carries)
        op.exprs = [weakref.ref(e) for e in exprs]
    return exprs


def apply_function(fn: Function, args: list[Expr]) -> list[Expr]:
    """Records a whole Function applied to Exprs (how a transformed function is called)."""
    env: dict[Value, Expr] = dict(zip(fn.params, args))
    for op in fn.body:
        inputs = tuple(env[v] for v in op.inputs)
        outs = apply_op(op.prim.name, inputs, op.loc, regions=op.regions, **op.params)
        env.update(zip(op.results, outs))
    return [env[r] for r in fn.results]


def build_function(name: str, params: list[Expr], outputs: list[Expr]):
    """Cuts the Function computing `outputs` from `params`.

    Returns (fn, captures): fn's parameters are `params` followed by one parameter per
    captured leaf (a realised array, or a symbolic value of an enclosing trace) in
    `captures`, in first-use order. Realised intermediates are leaves too: they are
    reused, never recomputed.
    """
    env: dict[int, Value] = {}
    fn_params: list[Value] = []
    for p in params:
        v = Value(p.type, p.value.name_hint)
        env[id(p)] = v
        fn_params.append(v)
    captures: list[Expr] = []
    body: list[Op] = []
    copied: dict[int, tuple] = {}
    keep_alive = []          # ids stay valid while their Exprs are referenced

    def visit(root: Expr):
        stack = [(root, False)]
        while stack:
            e, expanded = stack.pop()
            if id(e) in env:
                continue
            if e.data is not None or e.op is None:
                v = Value(e.type, e.value.name_hint)
                env[id(e)] = v
                fn_params.append(v)
                captures.append(e)
                keep_alive.append(e)
                continue
            if not expanded:
                stack.append((e, True))
                stack.extend((a, False) for a in reversed(e.args) if id(a) not in env)
                continue
            _copy_op(e, env, body, copied, keep_alive)

    for out in outputs:
        visit(out)
    results = [env[id(o)] for o in outputs]
    return Function(name, fn_params, body, results), captures

def closed_region(name: str, params: list[Expr], outputs: list[Expr]):
    """The Function of a region whose captures were all made parameters beforehand."""
    fn, caps = build_function(name, params, outputs)
    assert not caps, "every value a region reads is one of its parameters"
    return fn


def region_captures(regions: list[tuple[list[Expr], list[Expr]]]) -> list[Expr]:
    """The leaves each region's outputs depend on besides its params, first-use order, each
    once: what a control-flow or custom-rule op must receive for all its regions."""
    seen: set[int] = set()
    out: list[Expr] = []
    for params, outputs in regions:
        for e in build_function("probe", params, outputs)[1]:
            if id(e) not in seen:
                seen.add(id(e))
                out.append(e)
    return out


def _copy_op(e: Expr, env, body, copied, keep_alive):
    """Copies e's op once (all its results), mapping inputs through env."""
    key = id(e.op)
    if key not in copied:
        inputs = tuple(env[id(a)] for a in e.args)
        results = tuple(Value(r.type, r.name_hint) for r in e.op.results)
        body.append(Op(e.op.prim, inputs, results, dict(e.op.params), e.op.regions, e.op.loc))
        copied[key] = results
        keep_alive.append(e.op)
    index = e.op.results.index(e.value)
    env[id(e)] = copied[key][index]
    keep_alive.append(e)
