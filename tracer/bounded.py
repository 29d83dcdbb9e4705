"""Bounded programs: a pending graph too large to compile at once is computed in pieces.

The imperative front compiles a value's whole pending history into one program (a read) and
a backward pass into one program (forward and gradients together). A Python loop unrolled
over a long sequence (pytorch/examples' time_sequence_prediction steps two LSTMCells 999
times) makes tens of thousands of ops: LLVM then takes minutes (a 25-step LSTMCell backward
took 13 s to compile, growing with the length). Past a bound the work is tiered down to
what eager PyTorch does:

  - a read whose pending graph holds over MAX_OPS ops computes them one op at a time, in
    dependency order (each op a small program, compiled once per structure: the ops of an
    unrolled loop repeat, so a handful of programs serve the whole sequence). Ops that only
    move data (a slice per time step, `x.split(1, dim=1)`) differ per step in their
    offsets: NumPy does those (ir/interpret.py, exact), or each offset would compile;
  - a backward over more than MAX_NODES autograd nodes (tracer/autograd/by_node.py)
    computes the forward values that way, then runs each node's VJP as its own program
    with the cotangents passed between nodes as arrays.

STATS counts both, so tests can see the tier taken and bound what it compiles.
"""
from __future__ import annotations

import numpy as np

from ir.interpret import eval_op
from runtime.config import plain_native
from tracer import realize_plans, run_programs
from tracer.expr import _frozen_params, build_function

MAX_OPS = 4096
# data movement only: computed exactly by NumPy in the op-by-op tier
MOVES = frozenset({"slice", "reshape", "transpose", "broadcast_in_dim", "concatenate", "pad"})
MAX_NODES = 2000
# reads computed op by op (ops: how many), backward passes run node by node; moves_shared:
# data moves that reused the result of the same move earlier in the read (_move)
STATS = {"reads": 0, "ops": 0, "backwards": 0, "moves_shared": 0}
SHARE_MOVES = True       # (tests switch it off to compare with every move done again)
MOVES_KEPT = 64
# one-op programs by op key (_one_op): ops computed by a kept program (hits), or that built
# one (misses); the others go through realize_plans' walk
ONE_OP_STATS = {"hits": 0, "misses": 0}
ONE_OP_PROGRAMS = True   # (tests switch it off to compare with the walk)
_ONE_OP: dict = {}
_ONE_OP_LIMIT = 1024


def too_large(pending: list) -> bool:
    """Whether computing pending (Exprs without data) means a program of over MAX_OPS ops.
    Stops walking once past the bound: a small graph costs a walk of its own size."""
    seen: set = set()
    stack = list(pending)
    while stack:
        e = stack.pop()
        if e.data is not None or e.op is None or id(e) in seen:
            continue
        seen.add(id(e))
        if len(seen) > MAX_OPS:
            return True
        stack.extend(e.args)
    return False


def pending_ops(pending: list) -> list:
    """The Exprs without data behind pending (op results), each after its arguments."""
    order, done = [], set()
    for root in pending:
        stack = [(root, False)]
        while stack:
            e, expanded = stack.pop()
            if id(e) in done or e.data is not None or e.op is None:
                continue
            if expanded:
                done.add(id(e))
                order.append(e)
            else:
                stack.append((e, True))
                stack.extend((a, False) for a in reversed(e.args) if id(a) not in done)
    return order


def compute_in_pieces(pending: list, run):
    """Computes every pending op behind pending one at a time (run(fn, arrays) runs a
    program). Each keeps its op: an op inside an autograd node's recorded ops stays part of
    the node's local function (cutting it would cut the gradient path through it)."""
    ops = pending_ops(pending)
    STATS["reads"] += 1
    STATS["ops"] += len(ops)
    # an intermediate value is dropped once its last reader here has run, unless something
    # needs it later (the values read, autograd node outputs): a node's backward recomputes
    # its interior from its inputs, so memory stays near what eager PyTorch keeps
    uses: dict[int, int] = {}
    for e in ops:
        for a in e.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    keep = {id(e) for e in pending}
    mine = {id(e) for e in ops if e.data is None}
    moved: dict = {}
    for e in ops:
        if e.data is not None:
            continue
        if e.op.prim.name in MOVES:
            out = _move(e, moved)
        else:
            out = _one_op(e, run)
        out.flags.writeable = False
        e.data = out
        for a in e.args:
            uses[id(a)] -= 1
            if uses[id(a)] == 0 and id(a) in mine and not a.recorded and id(a) not in keep:
                a.data = None


def _move(e, moved: dict) -> np.ndarray:
    """e's data move done by NumPy, contiguous. The same move of the same Exprs (each step
    of a loop broadcasts the bias and transposes the weight of its Linear again) is done
    once per read: an Expr's value does not change, and moved keeps the Exprs (so their
    ids stay theirs) but not their arrays. moved holds the last MOVES_KEPT results (a
    dict in order of use), so the per-step moves of a long loop do not pile up."""
    op = e.op
    nr = op.results.index(e.value)
    key = None
    if SHARE_MOVES:
        frozen = getattr(op, "frozen", None)
        if frozen is None:
            frozen = _frozen_params(op.params)
        if frozen is not None:
            key = (op.prim, frozen, nr, e.value.type, tuple([id(a) for a in e.args]))
            hit = moved.pop(key, None)
            if hit is not None:
                moved[key] = hit                    # the most recently used, again
                STATS["moves_shared"] += 1
                return hit[0]
    out = np.asarray(eval_op(op, [a.data for a in e.args])[nr])
    if not out.flags.c_contiguous:       # (ascontiguousarray would make a 0-d result 1-d)
        out = np.ascontiguousarray(out)
    if key is not None:
        moved[key] = (out, e.args)
        if len(moved) > MOVES_KEPT:
            del moved[next(iter(moved))]
    return out


def _one_op(e, run) -> np.ndarray:
    """e's value (its arguments computed) by the program kept for its op's key: what
    realize_plans' walk keys for a one-op graph (the primitive, its frozen params, the
    types, which arguments are the same Expr), taken without the walk. The program is the
    one build_function cuts for it the first time, run on this op's arrays; an op with
    several results or regions, params that are not plain, or an argument without data
    takes the walk."""
    op = e.op
    frozen = getattr(op, "frozen", None)
    if frozen is None:
        frozen = _frozen_params(op.params)
    args = e.args
    if not ONE_OP_PROGRAMS or frozen is None or len(op.results) != 1 or op.regions:
        return realize_plans.compute([e], run)[0]
    ids: dict = {}
    types, pattern = [], []
    for a in args:
        if a.data is None:
            return realize_plans.compute([e], run)[0]
        pattern.append(ids.setdefault(id(a), len(ids)))
        types.append(a.value.type)
    key = (op.prim, frozen, e.value.type, tuple(types), tuple(pattern))
    plan = _ONE_OP.get(key)
    if plan is None:
        ONE_OP_STATS["misses"] += 1
        fn, captures = build_function("realize", [], [e])
        where = {id(a): i for i, a in reversed(list(enumerate(args)))}
        positions = [where.get(id(c)) for c in captures]
        if any(p is None for p in positions):       # (it captured something else)
            return run(fn, [c.data for c in captures])[0]
        if len(_ONE_OP) >= _ONE_OP_LIMIT:
            _ONE_OP.clear()
        plan = _ONE_OP[key] = (fn, positions, direct_call(fn, run))
    else:
        ONE_OP_STATS["hits"] += 1
    fn, positions, exe = plan
    arrays = [args[i].data for i in positions]
    if exe is not None and plain_native():
        return exe(*arrays)[0]
    return run(fn, arrays)[0]


def direct_call(fn, run):
    """The Executable that run (tensor.run_function) calls for fn, kept by a caller that
    runs fn many times (its argument checks stay; the two lookups before are saved), or
    None (another run, other settings: the caller calls run)."""
    return run_programs.executable_of(fn) if run is run_programs.run_function else None
