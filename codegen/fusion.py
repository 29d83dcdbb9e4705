"""Fusion planning: which values get a buffer, and which loop nests compute them.

The plan is made over the dataflow graph of one Function (ir.graphs for the step DAG):

1. Materialise (give a buffer to) a value when it is a function result, the result of a
   reduction, argmax/argmin or a kernel op (dot_general or gemm, scatter_add, cond, while,
   scan), an operand of a kernel op, or when inlining it would be expensive: its inlined
   expression is costly (transcendentals, divisions) and it has several consumers or a
   consumer that evaluates it more than once per element (an expanding broadcast, pad,
   concat, gather). Everything else is inlined into its consumers by the elemental emitter.
2. Each materialised value computed elementally becomes a root of a LoopNest over its
   iteration space (its shape; for a reduction, its operand's shape: it accumulates).
   Roots over the same space join one nest (sibling / multi-output fusion; the newest
   MAX_CANDIDATES nests of the space are tried, oldest first) unless that would create a
   cycle between steps, or the new root reads a value of that nest other than at the very
   same index (a same-index read is taken from the register the nest just computed, so a
   producer and its consumer can share a nest).
3. Steps run in a topological order of the step DAG.
"""
from __future__ import annotations

import itertools
import math

from codegen.affine_index import affine_gathers
from codegen.control import prepare_loop
from codegen.dots import GEMM, Externals, prepare_dots
from codegen.elemental import REDUCE_KINDS, SAME_INDEX_PRIMS, UNROLLED_REDUCTION
from codegen.records import Record
from codegen.vector_dots import VECTOR_DOTS, group as group_vector_dots
from ir.core import Function, Op, Value
from ir.graphs import DiGraph, topological_order
from ir.primitives import having

# the primitives' fusion traits (ir/primitives.py); gemm is codegen's own kernel primitive
KERNEL_PRIMS = having(fusion="kernel") | {GEMM.name, VECTOR_DOTS.name}
ALWAYS_MATERIALIZED = having(fusion="materialize")
EXPANDING = having(expands=True)
REARRANGING = having(rearranges=True) | {"constant"}    # index remaps: no arithmetic
# what a light expression holds: cheap elementwise ops but mul (see _light), index remaps
LIGHT_PRIMS = ((SAME_INDEX_PRIMS & having(cost="cheap")) - {"mul", "rem"}) | REARRANGING
COST = {"cheap": 1, "divide": 4, "transcendental": 10}   # per inlined element, by cost class
EXPENSIVE_COST = 8        # an inlined expression at least this costly is not recomputed
MAX_INLINE_COST = 256     # beyond this an expression is stored even with a single consumer
LIGHT_OPS = 8            # an expression of at most this many cheap ops (index remaps free)...
LIGHT_READS = 3          # ...reading at most this many buffers is recomputed, never stored
MAX_NEST_ROOTS = 16       # keep a fused loop body small enough for the register file
STATS = {"small_reductions": 0}     # reductions planned per output element (tests count)
MAX_CANDIDATES = 32       # the newest nests of a space tried for a new root: keeps planning
                          # linear in program size (an old nest rarely fits: it feeds the rest)


class Out(Record, frozen=True):
    """The buffer of function output number `index` (a buffer key, like a Value)."""
    _fields = ("index",)


class Root(Record):
    """One output of a loop nest.

    kind "store": the elements of `value` are written to its buffer (or to function output
    `out_index` when this root is a copy of a result). kind "reduce": `value` is a reduction
    whose operand is evaluated over the nest's space and accumulated into value's buffer.
    """
    _fields = ("value", "kind", "out_index")
    _defaults = {"kind": "store", "out_index": None}

    @property
    def key(self):
        """The key of the buffer this root writes."""
        return self.value if self.out_index is None else Out(self.out_index)


class LoopNest(Record):
    """Roots over one iteration space; reads: Value -> set of same-index flags."""
    _fields = ("space", "roots", "reads", "order")
    _defaults = {"order": 0}
    _factories = {"roots": list, "reads": dict}


class KernelStep(Record):
    _fields = ("op", "order")
    _defaults = {"order": 0}


class Plan(Record):
    """materialized: the values (not params) that get a buffer; homes: materialised result
    value -> index of its output buffer; steps: LoopNest | KernelStep, in execution order;
    producers: Value -> Op; ops: the live ops, in order (dot_generals laid out by dots)."""
    _fields = ("materialized", "homes", "steps", "producers", "ops")


def op_cost(op: Op) -> int:
    """What evaluating one element of op's result inline costs (its operands aside)."""
    if op.prim.cost == "power":               # integer_pow: repeated squaring
        return max(1, abs(op.params["n"]).bit_length())
    return COST[op.prim.cost]


def inlined_ops(nest: "LoopNest", buffers, producers: dict):
    """The ops evaluated inline for the roots of nest (each once): their producers, and
    theirs, down to the values held in buffers."""
    seen = set()
    stack = [producers[r.value] for r in nest.roots if r.value in producers]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        yield op
        stack.extend(producers[x] for x in op.inputs if x not in buffers and x in producers)


def live_ops(fn: Function, externals: Externals | None = None) -> list[Op]:
    """The ops that contribute to a result, in body order (dot_generals laid out by dots,
    loops prepared by control, vector dots of one length grouped by vector_dots)."""
    body = [prepare_loop(op) for op in prepare_dots(fn.body, fn.results, externals)]
    producers = {r: op for op in body for r in op.results}
    needed, stack = set(), list(fn.results)
    while stack:
        op = producers.get(stack.pop())
        if op is not None and op not in needed:
            needed.add(op)
            stack.extend(op.inputs)
    return group_vector_dots([op for op in body if op in needed])


def small_reduction(op: Op) -> bool:
    """Whether reduction op is computed per output element (a store root over its result,
    elemental's unrolled reduce) instead of accumulated over its operand's space: a few
    elements per output (a pool's window) with the operand's last loop axis kept. Over the
    operand's space such a sum or max goes to memory (the output is read and written once
    per element) and its last loop reads with a stride (the 2x2 max pool over 32x16x32x32:
    half the row in scalar code, as the interleaved loads leave a gap at the row's end);
    over the output, the window's elements are loads at constant offsets. Same combinations
    in the same order (C order from the identity), so the same bits. Not when the first loop
    axis is reduced: threads may split the operand's nest there, each task summing its share
    (codegen.nest_plan.plan_split), which adds in another order."""
    x, axes = op.inputs[0], set(op.params["axes"])
    count = math.prod(x.shape[a] for a in axes)
    loops = [a for a, n in enumerate(x.shape) if n != 1]
    return 1 < count <= UNROLLED_REDUCTION and not axes & {loops[0], loops[-1]}


def window_of(op: Op):
    """(output shape, kept axes) of a small reduction: its operand is read at the window
    index, and a broadcast_in_dim of that shape and dims reads at the output index."""
    kept = tuple(a for a in range(op.inputs[0].ndim) if a not in op.params["axes"])
    return op.results[0].shape, kept


def _evaluations(consumer: Op, v: Value) -> int:
    """How many element evaluations of v one consumer makes when v is inlined into it."""
    if consumer.prim.name in EXPANDING:
        return consumer.results[0].type.size
    return v.type.size


def _light(op: Op, light: dict, mat: set, params: set):
    """(ops, buffers read) of op's inlined expression when it is light: only cheap ops,
    at most LIGHT_OPS of them (index remaps free) reading at most LIGHT_READS buffers; else
    None. Such an expression costs about what the load of a stored copy would, so storing it
    for its several consumers only adds a pass over memory: the CNN's relu in pool-window
    order (bias add, compare, select) and the pool's window hits (compare with the max) were
    each written (2 MB) and read back by two nests. Counted over the expression's DAG, as the
    elemental emitter evaluates a value read twice at one index once. No product: inlined
    into an addition, LLVM may contract the two into a fused multiply-add (FP_FLAGS), where
    the stored product was rounded first, and the bits would change."""
    if op.prim.name not in LIGHT_PRIMS:
        return None
    ops = set() if op.prim.name in REARRANGING else {op}
    reads = set()
    for x in op.inputs:
        if x in mat or x in params:
            reads.add(x)
        elif light.get(x) is None:
            return None
        else:
            ops |= light[x][0]
            reads |= light[x][1]
    if len(ops) > LIGHT_OPS or len(reads) > LIGHT_READS:
        return None
    return ops, reads


def choose_materialized(fn: Function, ops: list[Op]) -> tuple[set, set]:
    """(values that get a buffer, the subset chosen only to avoid recomputation)."""
    params = set(fn.params)
    mat = {r for r in fn.results if r not in params}
    consumers: dict = {}
    for op in ops:
        if op.prim.name in KERNEL_PRIMS:
            mat.update(op.results)
            mat.update(x for x in op.inputs if x not in params)
        elif op.prim.name in ALWAYS_MATERIALIZED:
            mat.update(op.results)
        for x in set(op.inputs):
            consumers.setdefault(x, []).append(op)
    affine_indices, gathered = affine_gathers(ops, params)
    mat.update(gathered)
    cost, optional, light = {}, set(), {}
    for op in ops:
        if op.prim.name in KERNEL_PRIMS:
            continue
        v = op.results[0]
        cost[v] = op_cost(op) + sum(1 if x in mat or x in params else cost[x] for x in op.inputs)
        light[v] = _light(op, light, mat, params)
        if v in mat or v in affine_indices or light[v] is not None:
            continue
        users = consumers.get(v, [])
        reused = len(users) > 1 or any(_evaluations(c, v) > v.type.size for c in users)
        if cost[v] > MAX_INLINE_COST or (cost[v] >= EXPENSIVE_COST and reused):
            mat.add(v)
            optional.add(v)
    return mat, optional


class _Planner:
    def __init__(self, fn: Function, externals: Externals | None):
        self.fn = fn
        self.params = set(fn.params)
        self.ops = live_ops(fn, externals)
        self.producers = {r: op for op in self.ops for r in op.results}
        self.mat, self.optional = choose_materialized(fn, self.ops)
        self.readers: dict = {}          # materialised Value -> [(reading step, same flags)]
        self.dag = DiGraph()
        self.step_of: dict = {}          # materialised Value -> the step computing it
        self.root_kind: dict = {}        # materialised Value -> kind of its root
        self.nests: dict = {}            # space -> [LoopNest]
        self.counter = itertools.count()
        # ancestors of each step as a bitset (bit k: the step with order k), kept exact as
        # edges are added, so the cycle test of `fits` costs O(1) instead of a graph search
        # (a search per candidate nest made planning quadratic in program size)
        self.ancestors: dict = {}

    def reads_of(self, v: Value, same: bool, out: dict, seen: set, window=None):
        """Collects the buffered values (and params) that evaluating v inline reads.

        window: (output shape, kept axes) when v is read at the window index of a small
        reduction computed per output element; a broadcast there that puts the reduced
        axes back reads its operand at that output element, the root's own index (a pool's
        window hits: eq(window, broadcast(max))), so the max can share the hits' nest."""
        if (v, same, window) in seen:
            return
        seen.add((v, same, window))
        if v in self.mat or v in self.params:
            out.setdefault(v, set()).add(same)
            return
        op = self.producers[v]
        if window is not None and op.prim.name == "broadcast_in_dim" \
                and (op.inputs[0].shape, tuple(op.params["dims"])) == window:
            self.reads_of(op.inputs[0], True, out, seen)
            return
        elementwise = op.prim.name in SAME_INDEX_PRIMS
        for x in op.inputs:
            self.reads_of(x, same and elementwise, out, seen, window if elementwise else None)

    def root_reads(self, root: Root) -> dict:
        out, seen = {}, set()
        if root.out_index is not None:
            self.reads_of(root.value, True, out, seen)
            return out
        op = self.producers[root.value]
        if root.kind == "store" and op.prim.name in REDUCE_KINDS:     # a small reduction
            self.reads_of(op.inputs[0], False, out, seen, window_of(op))
            return out
        inputs = op.inputs[:1] if root.kind == "reduce" else op.inputs
        same = root.kind == "reduce" or op.prim.name in SAME_INDEX_PRIMS
        for x in inputs:
            self.reads_of(x, same, out, seen)
        return out

    def fits(self, nest: LoopNest, reads: dict) -> bool:
        if len(nest.roots) >= MAX_NEST_ROOTS:
            return False
        for u, sames in reads.items():
            step = self.step_of.get(u)
            if step is nest:
                if sames != {True} or self.root_kind[u] != "store":
                    return False
            elif step is not None and self.ancestors[step] >> nest.order & 1:
                return False
        return True

    def add_step(self, step):
        step.order = next(self.counter)
        self.dag.add_node(step)
        self.ancestors[step] = 0
        return step

    def add_edge(self, src, dst):
        """src -> dst in the step DAG; dst and everything after it inherit src's ancestors."""
        if self.dag.has_edge(src, dst):
            return
        self.dag.add_edge(src, dst)
        new = self.ancestors[src] | 1 << src.order
        stack = [dst]
        while stack:
            step = stack.pop()
            if new & ~self.ancestors[step]:
                self.ancestors[step] |= new
                stack.extend(self.dag.successors(step))

    def place(self, root: Root, space: tuple):
        reads = self.root_reads(root)
        candidates = self.nests.get(space, [])[-MAX_CANDIDATES:]
        nest = next((n for n in candidates if self.fits(n, reads)), None)
        if nest is None:
            nest = self.add_step(LoopNest(space))
            self.nests.setdefault(space, []).append(nest)
        nest.roots.append(root)
        for u, sames in reads.items():
            nest.reads.setdefault(u, set()).update(sames)
            self.readers.setdefault(u, []).append((nest, sames))
            step = self.step_of.get(u)
            if step is not None and step is not nest:
                self.add_edge(step, nest)
        if root.out_index is None:
            self.step_of[root.value] = nest
            self.root_kind[root.value] = root.kind

    def place_kernel(self, op: Op):
        step = self.add_step(KernelStep(op))
        for x in op.inputs:
            self.readers.setdefault(x, []).append((step, {False}))
            if x in self.step_of:
                self.add_edge(self.step_of[x], step)
        for r in op.results:
            self.step_of[r] = step
            self.root_kind[r] = "kernel"

    def plan(self) -> Plan:
        for op in self.ops:
            v = op.results[0]
            if op.prim.name in KERNEL_PRIMS:
                self.place_kernel(op)
            elif v in self.mat:
                kind = "reduce" if op.prim.name in REDUCE_KINDS else "store"
                if kind == "reduce" and small_reduction(op):
                    kind = "store"
                    STATS["small_reductions"] += 1
                space = op.inputs[0].shape if kind == "reduce" else v.shape
                self.place(Root(v, kind), space)
        homes = {}
        for j, r in enumerate(self.fn.results):
            if r not in self.params and r not in homes:
                homes[r] = j
            else:
                self.place(Root(r, "store", out_index=j), r.shape)
        self.demote()
        steps = topological_order(self.dag, key=lambda s: s.order)
        return Plan(self.mat, homes, steps, self.producers, self.ops)

    def demote(self):
        """Un-materialises values stored only to avoid recomputation whose every reader is
        in the nest computing them, at the same index: the register is reused, no store."""
        for v in self.optional:
            nest = self.step_of.get(v)
            readers = self.readers.get(v, [])
            if all(step is nest and sames == {True} for step, sames in readers):
                nest.roots = [r for r in nest.roots if r.value is not v or r.out_index is not None]
                nest.reads.pop(v, None)
                self.mat.discard(v)
                del self.step_of[v]
                if not nest.roots:
                    self.dag.remove_node(nest)


def plan_function(fn: Function, externals: Externals | None = None) -> Plan:
    """The fusion plan of fn's top-level body (regions are planned when they are lowered).

    Args:
        fn: the Function.
        externals: native functions the code may call (a gemm makes big dots BLAS calls).
    """
    return _Planner(fn, externals).plan()
