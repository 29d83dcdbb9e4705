"""Replaying a backward program: a training loop's later steps skip emitting it.

The engine (engine.py) builds one backward Function per backward() by walking the autograd
graph and inlining each node's VJP: the same work every step of a training loop, whose
graph has the same structure each time. Here a cheap structural key of the whole input of
that emission is computed first: the node graph (node classes, edges), the Expr graph
behind it (primitives, params, types, which Exprs hold data, which are shared), the seeds,
the old `.grad`s and the targets. Equal keys mean the emitter would write the same program
over the same positions of that walk, so the program built for the first such step is
reused and only bound to the new step's arrays: its captures and the Exprs it realises
are found again by their position in the walk.

Only the plain case replays (`describe` returns None otherwise, and the engine emits as
before): no create_graph, no tensor hooks or retain_grad, only recorded ops, leaves and
custom autograd.Function nodes (their user backward is run for the key, function.py's
replay_key; no node whose local Function was given), no symbolic values, and a walk of
bounded size.
"""
from __future__ import annotations

from tracer import bounded
from tracer.autograd import follow, node_walk
from tracer.autograd.graph import needed_nodes
from tracer.autograd.nodes import AccumulateGrad
from tracer.autograd.recording import OpNode
from runtime import log, logging_enabled
from tracer.structure_key import Unkeyable, walk
from tracer.tensor import updated_pending

_OP_VJP = OpNode.emit_vjp
_PLANS: dict = {}
_PLANS_LIMIT = 256
_RECENT: list = []             # (key, plan) of the last structures replayed, newest first
_RECENT_LIMIT = 4
_MAX_EXPRS = 4096
# how often backward() replayed a program (hits) or emitted one for a new structure (misses)
STATS = {"hits": 0, "misses": 0}


class Walk:
    """The structural key of one backward call, and the Exprs in walk order."""
    __slots__ = ("key", "exprs", "index", "custom")

    def __init__(self, key: tuple, exprs: list, index: dict, custom: list = ()):
        self.key = key
        self.exprs = exprs
        self.index = index
        self.custom = custom      # custom Function nodes whose backward ran for the key


class Plan:
    """A built backward Function and where its inputs and outputs sit in the walk."""
    __slots__ = ("fn", "captures", "realize", "owners", "unfollowable", "exe", "types")

    def __init__(self, fn, captures: list[int], realize: list[int], owners: list[int]):
        self.fn = fn
        self.captures = captures          # walk position of each param's Expr
        self.realize = realize            # walk positions of the Exprs the program realises
        self.owners = owners              # target positions that receive a gradient
        self.unfollowable = False         # follow.learn could not keep its shape
        self.exe = False                  # engine._follow_replay's Executable (None: none)
        self.types = None                 # the gradients' result types (engine)


def describe(run, targets: list) -> Walk | None:
    """The Walk of a backward() over run's graph toward targets ((edge, tensor) pairs)."""
    try:
        order = run.order
        node_pos, roots, stops, templated, custom = _check_nodes(order, run, targets)
        extra = [r._expr for r in run.roots]
        extra += [s._expr if s is not None else None for s in run.seeds]
        extra += [t._grad._expr if t._grad is not None else None for _, t in targets]
        # values updated in place this step (BatchNorm's running statistics): the program
        # computes them along (Run.finish), so they are part of its structure
        extra += updated_pending([])
        if stops:            # nodes replayed from op templates: not walked inside
            exprs, index, expr_parts = node_walk.walk(roots + extra, stops, _MAX_EXPRS)
            node_walk.STATS["keys"] += 1
        else:
            exprs, index, expr_parts = walk(roots + extra, True, _MAX_EXPRS)
        nodes = [(structure, tuple([index[id(c)] for c in captures]))
                 for _, captures, structure in custom]
        for n, kind in zip(order, templated):
            edges = []
            for e in n.edges:
                edges.append((node_pos[e[0]], e[1]) if e is not None else None)
            if kind:
                # a template node: its output parts name it and list its inputs (node_walk)
                nodes.append((type(n), tuple(edges)))
                continue
            nodes.append((type(n),
                          tuple([index[id(e)] if e is not None else -1
                                 for e in n.input_exprs]),
                          tuple(edges),
                          tuple([index[id(e)] if e is not None else -1
                                 for e in n.output_exprs]),
                          n.given_fn))     # a jitted call's Function
        key = (expr_parts, tuple(nodes),
               tuple([index[id(e)] if e is not None else -1 for e in extra]),
               tuple([(node_pos[e[0]], e[1], t.is_leaf, _grad_part(t)) for e, t in targets]),
               tuple([(node_pos[e[0]], e[1]) for e in run.root_edges]))
    except Unkeyable as why:
        _log_off(str(why))
        return None
    except KeyError:
        _log_off("an edge leaves the graph being differentiated")
        return None
    return Walk(key, exprs, index, [n for n, _, _ in custom])


def _check_nodes(order: list, run, targets: list) -> tuple[dict, list, dict, list, list]:
    """(node -> position, the nodes' input and output Exprs, node_walk's stops, per node
    whether it is keyed by its Template); Unkeyable for a node that replay does not cover."""
    node_pos, roots, stops, templated, custom = {}, [], {}, [], []
    reads = bounded.STATS["reads"]
    for i, node in enumerate(order):
        node_pos[node] = i
        if node.hooks or node.retained:
            raise Unkeyable(f"{node.name()} has a tensor hook or retain_grad")
        if type(node).emit_vjp is not _OP_VJP:
            if not isinstance(node, AccumulateGrad):
                custom.append(node)          # (run after every node passed the checks)
        elif node._local is not None and node.given_fn is None:
            raise Unkeyable(f"{node.name()} was differentiated before (retain_graph)")
        ins = node.input_exprs
        roots += ins
        roots += node.output_exprs
        tm = node.template
        templated.append(tm is not None and node_walk.add_stops(stops, node, i, tm, reads))
    if custom:
        executed = needed_nodes(order, {e for e, _ in targets})
        custom = [_custom_part(node, node in executed, run) for node in custom]
        for _, captures, _ in custom:
            roots += captures
    return node_pos, roots, stops, templated, custom


def _custom_part(node, executed: bool, run) -> tuple:
    """(node, captures, structure) of a custom autograd.Function node: its user backward is
    run now for this backward's emitter (function.py replay_key), so the key holds what it
    computes. Unkeyable for a node this backward does not execute (its backward must not
    run) and for any other special node."""
    keyed = getattr(node, "replay_key", None)
    if keyed is None or not executed:
        raise Unkeyable(f"{node.name()} is a special node, or a custom autograd.Function "
                        "node this backward does not execute")
    node.check_saved()                  # (the engine's errors first, before user code runs)
    got = keyed(run.em)
    if got is None:
        raise Unkeyable(f"{node.name()} is a custom autograd.Function without "
                        "materialized gradients")
    structure, captures = got
    return node, captures, structure


def _grad_part(t) -> tuple | None:
    g = t._grad
    return None if g is None else (g._expr.type, g._grad_fn is None)


def lookup(walk: Walk) -> Plan | None:
    key = walk.key
    # NOTE: the structures of the last few calls are compared first: tuple equality of a
    # repeated structure (its parts share their objects) costs ~4.5 us where hashing the
    # key for the dict costs ~12 us (TensorType's __hash__ is a Python call per part)
    plan = None
    for recent_key, recent_plan in _RECENT:
        if recent_key == key:
            plan = recent_plan
            break
    else:
        plan = _PLANS.get(key)
        if plan is not None:
            _remember(key, plan)
    if plan is not None:
        exprs = walk.exprs
        for i in plan.captures:
            if exprs[i].data is None:
                return None
        STATS["hits"] += 1
        for node in walk.custom:          # their programs are not emitted: runs done
            node.drop_trace()
        return plan
    return None


def _remember(key: tuple, plan: Plan):
    _RECENT.insert(0, (key, plan))
    del _RECENT[_RECENT_LIMIT:]


def store(walk: Walk, fn, captures: list, realize: list, owners: list[int]):
    """Remembers the program emitted for walk's structure (if its inputs are all found)."""
    index = walk.index
    if not all(id(e) in index for e in list(captures) + list(realize)):
        return
    STATS["misses"] += 1
    if logging_enabled():
        log.info(f"backward replay: new graph structure ({len(walk.exprs)} values, "
            f"{len(_PLANS) + 1} kept); later backward() calls of this structure replay it")
    if len(_PLANS) >= _PLANS_LIMIT:
        _PLANS.clear()
        _RECENT.clear()
    plan = _PLANS[walk.key] = Plan(fn, [index[id(e)] for e in captures],
                                   [index[id(e)] for e in realize], owners)
    _remember(walk.key, plan)


def _log_off(reason: str):
    if logging_enabled():
        log.info(f"backward replay off for this call: {reason}")


def clear():
    follow.clear()
    _PLANS.clear()
    _RECENT.clear()
