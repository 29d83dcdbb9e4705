"""A backward pass over a very large autograd graph, run one node at a time.

engine.Run writes one Function holding the pending forward and every node's VJP. Past
bounded.MAX_NODES nodes (a Python loop unrolled over a long sequence) that program takes
minutes to compile, so here, as eager PyTorch does: the forward values are computed first
(in bounded pieces, tracer/bounded.py), then each node's VJP is its own small program,
compiled once per structure (the nodes of an unrolled loop repeat), with the cotangents
between nodes held as arrays. A node replayed from an op Template runs the program kept
for its structure (node_plans.py) instead of emitting it again. The gradients reaching
the targets then enter Run's usual ending (`.grad` accumulation) as data.

Only the plain case (as replay.py's): no create_graph, no hooks or retain_grad, only
recorded ops and leaves. Anything else keeps the one-program path.
"""
from __future__ import annotations

import numpy as np

from runtime import log, logging_enabled
from runtime.config import plain_native
from tracer import bounded
from tracer.autograd import node_plans
from tracer.autograd.emitter import Emitter
from tracer.autograd.nodes import AccumulateGrad
from tracer.autograd.recording import OpNode
from tracer.expr import data_expr
from tracer.tensor import realize, run_function


def applies(run) -> bool:
    """Whether run (an engine.Run) is large and plain enough to go node by node."""
    if run.create_graph or len(run.order) <= bounded.MAX_NODES:
        return False
    for node in run.order:
        if node.hooks or node.retained:
            return False
        if type(node).emit_vjp is not OpNode.emit_vjp and not isinstance(node, AccumulateGrad):
            return False
        if any(e is not None and e.symbolic for e in node.input_exprs):
            return False
    return True


def propagate(run, targets: list) -> set:
    """engine.Run.propagate, one node at a time: leaves run.em/run.cts holding the target
    edges' gradients as captured data. Returns the executed nodes."""
    bounded.STATS["backwards"] += 1
    target_set = set(targets)
    executed = run.check(targets)
    forward = [e for node in run.order if node in executed
               for e in list(node.input_exprs) + list(node.output_exprs)
               if e is not None and e.data is None]
    realize(forward + [r._expr for r in run.roots if r._expr.data is None])
    cts: dict = {}
    unkeyed = node_plans.STATS["unkeyed"]
    for edge, root, seed in zip(run.root_edges, run.roots, run.seeds):
        _add(cts, edge, _seed_array(root, seed))
    for node in run.order:
        if node not in executed:
            continue
        # (a node's cotangents are read once: dropped here, or the pass keeps them all)
        out = [cts.get((node, i)) if (node, i) in target_set else cts.pop((node, i), None)
               for i in range(node.num_outputs)]
        if all(g is None for g in out):
            continue
        wanted = [e is not None and (e in target_set or e[0] in executed) for e in node.edges]
        key = None
        if isinstance(node, OpNode):
            key = node_plans.key_of(node, out, wanted)
            if key is None:
                node_plans.STATS["unkeyed"] += 1
        plan = node_plans.lookup(key) if key is not None else None
        if plan is not None:
            node_plans.STATS["planned"] += 1
            _run_plan(node, plan, out, cts)
            continue
        em = Emitter()
        ct_exprs, values = {}, []
        for i, g in enumerate(out):
            if g is None:
                values.append(None)
                continue
            e = data_expr(g)
            ct_exprs[id(e)] = i
            values.append(em.value(e))
        grads = node.emit_vjp(em, values, wanted)
        pairs = [(nr, g) for nr, (g, w) in enumerate(zip(grads, wanted)) if w and g is not None]
        # one result per distinct computed Value (x + y hands the same cotangent to both
        # edges); a cotangent passed through unchanged is its input array
        given = {id(v): c.data for v, c in zip(em.params, em.captures)}
        results = list({id(g): g for _, g in pairs if id(g) not in given}.values())
        fn = em.function("backward_node", results) if results else None
        if key is not None:
            node_plans.STATS["emitted"] += 1
            made = node_plans.make(node, ct_exprs, em, pairs, results)
            if made is not None:
                exe = bounded.direct_call(fn, run_function) if fn is not None else None
                node_plans.store(key, fn, *made, exe)
        if fn is not None:
            arrays = run_function(fn, [c.data for c in em.captures])
            given.update((id(g), a) for g, a in zip(results, arrays))
        for nr, g in pairs:
            _add(cts, node.edges[nr], given[id(g)])
    if logging_enabled() and node_plans.STATS["unkeyed"] > unkeyed:
        log.info(f"node-by-node backward: {node_plans.STATS['unkeyed'] - unkeyed} nodes "
                 "emitted their own VJP program (no op Template, or an in-place op "
                 "rewrote their outputs); the others ran programs kept per structure")
    run._em = em = Emitter()              # the ending's Function: the gradients as data
    run.cts = {e: em.value(data_expr(cts[e])) for e in targets if e in cts}
    run.hooked.update(run.order)
    return executed


def _run_plan(node, plan, out: list, cts: dict):
    """A node's VJP by its kept plan (node_plans.py): its program on this node's arrays."""
    inputs = node.input_exprs
    params = [out[i] if kind == "ct" else inputs[i].data for kind, i in plan.sources]
    if plan.exe is not None and plain_native():
        results = plan.exe(*params)
    else:
        results = run_function(plan.fn, params) if plan.fn is not None else ()
    edges = node.edges
    for nr, (kind, k) in plan.edges:
        _add(cts, edges[nr], params[k] if kind == "param" else results[k])


def _add(cts: dict, edge, arr: np.ndarray):
    old = cts.get(edge)
    cts[edge] = arr if old is None else old + arr


def _seed_array(root, seed) -> np.ndarray:
    t = root._expr.type
    dtype = root._expr.data.dtype
    if seed is None:
        return np.ones(t.shape, dtype)
    return np.asarray(realize([seed._expr])[0], dtype)


def free(executed: set):
    """After a pass that released the graph: the computed node outputs become plain data
    (their op and arguments dropped) and the nodes forget their Exprs, so the forward
    values of the whole unrolled loop are freed with it instead of living as long as any
    tensor of it (the loss: its grad_fn reaches every node). A second backward still raises
    PyTorch's error (check_saved runs before anything reads the Exprs)."""
    for node in executed:
        for e in node.output_exprs:
            if e is not None and e.data is not None:
                e.op = None
                e.args = ()
        if isinstance(node, OpNode):
            node.input_exprs = [None] * len(node.input_exprs)
            node.output_exprs = [None] * len(node.output_exprs)
            node._local = None
