"""Building the one backward Function: copying forward Exprs in, inlining per-node VJPs.

`Emitter` owns the Builder of the Function the engine is writing. `value(expr)` gives the
IR Value of a forward Expr, copying the ops behind it on first use; leaves (realised data,
symbolic values of an enclosing trace) become the Function's parameters (`captures`), so
realised forward values are reused, never recomputed, and the Function's structure (the
compile-cache key) does not depend on the data.

`cut_function(name, inputs, outputs)` is a node's own local Function: the ops one recorded
user op produced, from its input Exprs to its output Exprs. Unlike build_function it ignores
realised data on the way (an output that was printed is still the result of its op), and it
stops only at the inputs and at true leaves. `cached_vjp` memoises ir.autodiff.vjp of such
local Functions by structure, so a training loop differentiates each op kind once.
"""
from __future__ import annotations

from ir import Builder, Function, Op, Value
from ir.autodiff import vjp
from tracer.expr import Expr, live_siblings
from tracer.pipeline import compact_key

_VJP_CACHE: dict = {}
_VJP_CACHE_LIMIT = 4096
# how often cached_vjp had to differentiate (misses) vs reuse: a training loop's later steps
# must only hit (tests/api/test_imperative_perf.py)
VJP_STATS = {"hits": 0, "misses": 0}


class Emitter:
    """The Function under construction: a Builder plus the Expr -> Value map."""

    def __init__(self):
        self.b = Builder()
        self.params: list[Value] = []
        self.captures: list[Expr] = []
        self.env: dict[int, Value] = {}
        self._copied: dict[int, tuple] = {}
        self._keep: list = []          # ids stay valid while their objects are referenced

    def value(self, root: Expr) -> Value:
        """The Value of root in this Function, copying its pending ops on first use."""
        stack = [(root, False)]
        env = self.env
        while stack:
            e, expanded = stack.pop()
            if id(e) in env:
                continue
            if e.data is not None or e.op is None:
                self._capture(e)
            elif not expanded:
                stack.append((e, True))
                stack.extend((a, False) for a in reversed(e.args) if id(a) not in env)
            else:
                self._copy(e)
        return env[id(root)]

    def live_siblings(self, skip: list) -> list:
        """Pending live results of the multi-result ops copied so far that nothing asked
        for (an RNN scan's final state): computed along and kept, or a loop that carries
        them (`h = h.detach()` each batch) recomputes their whole history every step."""
        seen = {id(e) for e in skip}
        out = []
        for x in self._keep:
            if isinstance(x, Expr):
                out += live_siblings(x, seen)
        return out

    def _capture(self, e: Expr):
        v = Value(e.type, e.value.name_hint)
        self.env[id(e)] = v
        self.params.append(v)
        self.captures.append(e)
        self._keep.append(e)

    def _copy(self, e: Expr):
        op = e.op
        key = id(op)
        copied = self._copied.get(key)
        if copied is None:
            env = self.env
            inputs = tuple([env[id(a)] for a in e.args])
            if len(op.results) == 1:
                r = op.results[0]
                copied = (Value(r.type, r.name_hint),)
            else:
                copied = tuple([Value(r.type, r.name_hint) for r in op.results])
            self.b.ops.append(Op(op.prim, inputs, copied, dict(op.params), op.regions, op.loc))
            self._copied[key] = copied
            self._keep.append(op)
        self.env[id(e)] = copied[0] if len(copied) == 1 else copied[op.results.index(e.value)]
        self._keep.append(e)

    def zeros(self, t) -> Value:
        zero = self.b.const(0, t.dtype)
        return zero if t.shape == () else self.b.broadcast_in_dim(zero, shape=t.shape, dims=())

    def accumulate(self, old: Value | None, new: Value) -> Value:
        return new if old is None else self.b.add(old, new)

    def function(self, name: str, results: list[Value]) -> Function:
        return Function(name, list(self.params), list(self.b.ops), list(results))


def cut_function(name: str, inputs: list[Expr], outputs: list[Expr]):
    """The Function from `inputs` to `outputs` through the recorded ops between them.

    Returns (fn, captures): fn's params are one per input, then one per other leaf reached
    (constants, data the op closed over), listed in `captures`.
    """
    em = Emitter()
    for e in inputs:
        em._capture(e)
    n_inputs = len(inputs)
    results = []
    for out in outputs:
        stack = [(out, False)]
        while stack:
            e, expanded = stack.pop()
            if id(e) in em.env:
                continue
            if e.op is None:
                em._capture(e)
            elif not expanded:
                stack.append((e, True))
                stack.extend((a, False) for a in reversed(e.args) if id(a) not in em.env)
            else:
                em._copy(e)
        results.append(em.env[id(out)])
    fn = em.function(name, results)
    return fn, em.captures[n_inputs:]


def cached_vjp(fn: Function, wrt: tuple) -> tuple[Function, tuple]:
    """(vjp(fn, wrt), zero) where zero[i] says the i-th cotangent is structurally zero."""
    key = (compact_key(fn), wrt)
    hit = _VJP_CACHE.get(key)
    if hit is not None:
        VJP_STATS["hits"] += 1
    else:
        VJP_STATS["misses"] += 1
        vfn = vjp(fn, wrt)
        zero = tuple(_is_zero(vfn, r) for r in vfn.results[len(fn.results):])
        if len(_VJP_CACHE) >= _VJP_CACHE_LIMIT:
            _VJP_CACHE.clear()
        hit = _VJP_CACHE[key] = (vfn, zero)
    return hit


def _is_zero(fn: Function, v: Value) -> bool:
    """v is a constant 0 (or a broadcast of one): an input the result does not depend on."""
    defs = {r: op for op in fn.body for r in op.results}
    op = defs.get(v)
    if op is not None and op.prim.name == "broadcast_in_dim":
        op = defs.get(op.inputs[0])
    return op is not None and op.prim.name == "constant" and op.params.get("value") in (0, 0.0)


def inline_vjp(em: Emitter, fn: Function, args: list[Value], wrt: tuple, out_cts: list):
    """Inlines vjp(fn) into em with fn's params bound to args; returns the wrt cotangents
    (None where structurally zero). out_cts: one Value or None per result of fn."""
    vfn, zero = cached_vjp(fn, wrt)
    cts = []
    for r, g in zip(fn.results, out_cts):
        if r.type.dtype in ("f32", "f64"):
            cts.append(g if g is not None else em.zeros(r.type))
    outs = em.b.inline(vfn, list(args) + cts)
    grads = outs[len(fn.results):]
    return [None if z else g for g, z in zip(grads, zero)]


def result_dependencies(fn: Function) -> list[int]:
    """Per result of fn, a bit set of the params it depends on (through fn's body)."""
    deps: dict[Value, int] = {p: 1 << i for i, p in enumerate(fn.params)}
    for op in fn.body:
        mask = 0
        for v in op.inputs:
            mask |= deps.get(v, 0)
        for r in op.results:
            deps[r] = mask
    return [deps.get(r, 0) for r in fn.results]
