"""What a loop's adjoint saves from the forward pass and what it recomputes: a minimum cut.

The joint primal + adjoint ops of a loop body (transforms.vjp_joint) split into *known*
ops, which depend only on the body's parameters, and *unknown* ops, which depend on the
cotangents. Known values that unknown ops read must reach the adjoint loop: either saved
by the forward loop (stacked as ys: memory) or recomputed by the adjoint body from other
saved values (time). As in AOTAutograd's min-cut partitioner, the choice is a minimum cut
over the known values: cutting value v costs the bytes that saving it takes per iteration,
and the cut separates the body's parameters from what the adjoint reads:

- a parameter costs nothing when the adjoint gets it for free: an xs slice (the xs are
  there anyway) or a loop-invariant carry (passed along unchanged);
- values of expensive or reducing ops (dot_general, reductions, control flow) are never
  recomputed: the cut must save them or something after them;
- known ops that only the adjoint rules emitted (say `1 - t*t` for tanh) are never saved:
  computing them in the adjoint costs nothing extra.

Of the minimum cuts, the one nearest the adjoint is taken: for equal bytes it saves the
later value (tanh(x) rather than x), so less is recomputed.
"""
from __future__ import annotations

from ir.autodiff.transforms import Joint
from ir.core import Op, Value
from ir.graphs import FlowNetwork
from ir.primitives import having

# reductions, dots, scatters and control flow: what codegen does not inline either
NEVER_RECOMPUTED = having(fusion="materialize") | having(fusion="kernel")
_SOURCE, _SINK = "source", "sink"


def nbytes(v: Value) -> int:
    """The bytes that saving v takes."""
    return v.type.size * v.type.np_dtype.itemsize


def value_keys(j: Joint) -> dict[Value, tuple]:
    """A key for every parameter and primal-section value that stays the same when the
    joint is rebuilt with other cotangents: ('param', i) or ('op', op index, result index)."""
    keys: dict[Value, tuple] = {p: ("param", i) for i, p in enumerate(j.params)}
    for k, op in enumerate(j.ops[:j.n_primal]):
        keys.update((r, ("op", k, i)) for i, r in enumerate(op.results))
    return keys


def _unknown(j: Joint) -> set[Value]:
    unknown = set(j.ct_params)
    for op in j.ops:
        if any(v in unknown for v in op.inputs):
            unknown.update(op.results)
    return unknown


def adjoint_ops(j: Joint, stop: set) -> tuple[list[Op], set[Value]]:
    """The ops computing j.grads from the values in stop (and constants), and every value
    they read; ops whose live results are all in stop are left out."""
    live = set(j.grads)
    kept = []
    for op in reversed(j.ops):
        if not any(r in live and r not in stop for r in op.results):
            continue
        kept.append(op)
        live.update(op.inputs)
    kept.reverse()
    return kept, live


def _required(j: Joint, unknown: set) -> set[Value]:
    """The known values that the cotangent computation reads."""
    ops, _ = adjoint_ops(j, set())
    required = {g for g in j.grads if g not in unknown}
    for op in ops:
        if any(r in unknown for r in op.results):
            required.update(v for v in op.inputs if v not in unknown)
    return required


def _graph(j: Joint, required: set, free: set) -> FlowNetwork:
    """The flow network over the known values that required depends on."""
    position = {r: k for k, op in enumerate(j.ops) for r in op.results}
    defs = {r: op for op in j.ops for r in op.results}
    g = FlowNetwork()
    todo, seen = list(required), set(required)
    while todo:
        v = todo.pop()
        op = defs.get(v)
        cap = None                                   # None: infinite (never cut)
        if op is None:                               # a parameter
            g.add_edge(_SOURCE, (v, "in"))
            cap = 0 if v in free else nbytes(v)
        elif position[v] < j.n_primal:
            cap = nbytes(v)
            if op.prim.name in NEVER_RECOMPUTED:
                g.add_edge(_SOURCE, (v, "in"))
        g.add_edge((v, "in"), (v, "out"), cap)
        if v in required:
            g.add_edge((v, "out"), _SINK)
        for u in op.inputs if op is not None else ():
            g.add_edge((u, "out"), (v, "in"))
            if u not in seen:
                seen.add(u)
                todo.append(u)
    return g


def saved_values(j: Joint, free: set) -> set[Value]:
    """The known values the adjoint reads from the forward pass (free parameters
    included): a minimum cut by bytes, nearest the adjoint among equal ones."""
    unknown = _unknown(j)
    required = _required(j, unknown)
    if not required:
        return set()
    g = _graph(j, required, free)
    if _SOURCE not in g:                             # everything required is a constant
        return set()
    flow, sink_side = g.min_cut_sink_side(_SOURCE, _SINK)
    if flow == float("inf"):
        raise AssertionError("scan VJP partition: no finite cut (a parameter is unsaveable)")
    return {node[0] for node in g if isinstance(node, tuple) and node[1] == "in"
            and node not in sink_side and (node[0], "out") in sink_side}
