"""The node-by-node backward's repeated nodes: one emitted VJP program per node structure.

by_node.propagate runs each node's VJP as its own program. Emitting it (cutting the node's
local Function, inlining its VJP, keying the result for the compile cache) costs far more
Python than running it, and an unrolled loop repeats a few dozen node structures thousands
of times. A node replayed from an op_memo Template (recording.py: `node.template`) has the
Template's ops as its local Function, wired to its inputs as the Template wires its
arguments; so the emitted program is fixed by:

  - the Template and the node class, with the node's outputs still the Template's
    (an in-place op that adopted the node rewrote them: no plan),
  - which node inputs are the same Expr (`x * x`: param_of) and which are numbers (None),
  - which outputs bring a cotangent, and each cotangent array's shape and dtype,
  - which edges want a gradient.

The first node of a key is emitted as before; the plan keeps the program (run again by
run_function without a compile-cache key) and where each of its parameters and gradients
comes from. Later nodes of the key gather their arrays and run it: the same program on the
same arrays, so the same numbers. A node whose program read anything else (a forward
value it recomputed, a constant captured by its local Function) keeps no plan.
"""
from __future__ import annotations

# emitted: keyed nodes that built their program; planned: nodes that ran a kept plan;
# unkeyed: nodes without a key (no template, or not the Template's outputs any more)
STATS = {"emitted": 0, "planned": 0, "unkeyed": 0}
_PLANS: dict = {}
_PLANS_LIMIT = 1024


class Plan:
    __slots__ = ("fn", "sources", "edges", "exe")

    def __init__(self, fn, sources: list, edges: list, exe=None):
        self.fn = fn              # the VJP program, or None when it computes nothing
        self.sources = sources    # per parameter: ("ct", output nr) or ("in", input nr)
        self.edges = edges        # (edge nr, ("param", k) or ("result", k))
        self.exe = exe            # fn's Executable, called straight (bounded.direct_call)


def key_of(node, out: list, wanted: list):
    """The plan key of node given its cotangent arrays out and wanted edges, or None."""
    tm = node.template
    if tm is None or node.output_exprs != tm[1]:
        return None
    ids, pattern = {}, []
    for e in node.input_exprs:
        if e is None:
            pattern.append(None)
        else:
            if e.data is None:
                return None           # (the general path would copy its ops in)
            pattern.append(ids.setdefault(id(e), len(ids)))
    cts = tuple([None if g is None else (g.shape, g.dtype) for g in out])
    return (tm[0], type(node), tuple(pattern), cts, tuple(wanted))


def lookup(key):
    return _PLANS.get(key)


def store(key, fn, sources: list, edges: list, exe=None):
    if len(_PLANS) >= _PLANS_LIMIT:
        _PLANS.clear()
    _PLANS[key] = Plan(fn, sources, edges, exe)


def make(node, ct_exprs: dict, em, pairs: list, results: list):
    """(sources, edges) of the program just emitted for node, or None when a parameter is
    not one of the node's cotangents or inputs. ct_exprs: id(cotangent Expr) -> output nr;
    pairs: (edge nr, gradient Value); results: the program's result Values."""
    inputs = {}
    for i, e in enumerate(node.input_exprs):
        if e is not None:
            inputs.setdefault(id(e), i)
    sources = []
    for c in em.captures:
        if id(c) in ct_exprs:
            sources.append(("ct", ct_exprs[id(c)]))
        elif id(c) in inputs:
            sources.append(("in", inputs[id(c)]))
        else:
            return None
    param_pos = {id(v): k for k, v in enumerate(em.params)}
    result_pos = {id(v): k for k, v in enumerate(results)}
    edges = []
    for nr, g in pairs:
        k = param_pos.get(id(g))
        edges.append((nr, ("param", k) if k is not None else ("result", result_pos[id(g)])))
    return sources, edges


def clear():
    _PLANS.clear()
