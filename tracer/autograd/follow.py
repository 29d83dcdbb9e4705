"""Following a repeated backward(): the last replayed structure checked node by node.

A training loop's backward() replays a kept program (replay.py) after keying the graph:
toposort of the nodes, the targets, the walk of the Exprs behind them (stopping at template
node outputs, node_walk.py) into a key tuple, and the lookup. When every node of the graph
was replayed from an op template and every other value the nodes read is a plain data leaf
(a parameter, the batch), that key is fixed by the node graph alone: the node classes and
Templates, the edges, which input is which node's output, which leaf inputs are the same
Expr, whether each output holds data, and the old `.grad`s. So once a backward has
replayed a plan, its shape is kept (`learn`), and the next backward checks the new graph
against it directly (`follow`): from the root, each edge must reach a node of the same
class and Template at the position the kept order says (the map is one-to-one, so the
toposort would give the same order), each input must be what it was (the named node's
output, or a data leaf numbered by first use), nothing may hold a hook or retain_grad.
A compiled forward's node (`compile(model)`, keyed at its outputs by its Function as a
template node is by its Template) counts as a template node.
Then the kept plan runs on the Exprs found at the walk positions it reads, with the same
saved-tensor checks and release: the same program on the same arrays as the keyed replay,
so bitwise its results. Anything else (a hook, a changed shape or op, a second root, seeds,
`inputs=`, create_graph) returns None and backward() keys the graph as before
(`GRADJIT_LOG=1` says why).

A pending input or old `.grad` (a hand-written loop's `w -= lr * w.grad` and
`w.grad.zero_()` under no_grad, not read since), or one that holds data but keeps the op
that computed it (nn.Embedding's `idx.reshape(-1)`), is a *pending slot*. The small graphs
behind the pending slots (the updates on the last step's arrays) are keyed together by one
structure_key.walk from the slots in slot order, which numbers what they share, and that
key and where each slot sits in it must equal the kept ones. They must share no Expr with
the data leaves or with the nodes' outputs: then the backward's key walks them as it did
when the shape was kept. The tensors updated in place that are pending must be exactly the
kept slots, in the kept order (the key lists them in that order).
"""
from __future__ import annotations

from runtime import log, logging_enabled
from tracer import bounded
from tracer.autograd import follow_code
from tracer.autograd.nodes import AccumulateGrad
from tracer.autograd.recording import OpNode
from tracer.expr import Expr
from tracer.structure_key import Unkeyable, walk
from tracer.tensor import updated_pending

_OP_VJP = OpNode.emit_vjp
ENABLED = True
CODE_ENABLED = True            # a shape followed a few times checks by generated code
# followed backward calls, shapes kept, and follows refused; followed calls with pending
# slots, plans whose shape could not be kept, follows checked by generated code, followed
# programs run by their kept Executable (engine._run_kept) (the tests read these)
STATS = {"followed": 0, "learnt": 0, "refused": 0, "pending": 0, "unfollowable": 0,
         "generated": 0, "kept_exe": 0}
_PENDING_LIMIT = 256           # Exprs of the pending slots' graphs (an update is a few)


class Shape:
    """A replayed backward's graph, position by position, and where its plan's Exprs sit."""
    __slots__ = ("classes", "templates", "edges", "ins", "has_data", "leaf_types",
                 "root_nr", "targets", "grads", "executed", "plan", "sources", "pos",
                 "slots", "found", "pending", "pending_key", "updated", "follows", "check")

    def __init__(self):
        self.classes = []      # node class per position (toposort order)
        self.templates = []    # the node's op_memo Template, None for AccumulateGrad
        self.edges = []        # per node: tuple of (position, output_nr) or None
        self.ins = []          # per node: per input, -1 (the edge's node output), a leaf
        #                        slot (first use numbering), or None (no input)
        self.has_data = []     # per node: tuple, whether each output holds data
        self.leaf_types = []   # per leaf slot: its type
        self.pending = []      # per leaf slot: whether it is a pending value
        self.pending_key = None   # the pending slots' graphs: (their walk's parts, each
        #                           slot's position in it)
        self.updated = ()      # the slots of updated_pending()'s values, in its order
        self.root_nr = 0
        self.targets = []      # positions of the AccumulateGrad nodes (the targets)
        self.grads = []        # per target: None (no .grad) or the old .grad's leaf slot
        self.executed = []     # positions of the nodes whose saved values are checked
        self.plan = None       # replay.Plan
        self.sources = {}      # walk position -> ("in"|"out", node position, index),
        #                        ("grad", target number, 0) or ("sub", 0, position in the
        #                        pending slots' walk)
        self.pos = {}          # while learning: node -> position
        self.slots = {}        # while learning: id(leaf Expr) -> slot
        self.found = []        # while learning: the leaf Expr of each slot
        self.follows = 0       # follows so far
        self.check = None      # the generated check (follow_code.py), once made


_SHAPES: list = []             # the shapes of the last replayed structures, newest first
_SHAPES_LIMIT = 4              # dynamic_net.py's four depths


def clear():
    """Forgets the kept shapes (replay.clear calls it)."""
    _SHAPES.clear()


def _plain_leaf(e) -> bool:
    return type(e) is Expr and e.data is not None and e.op is None and not e.symbolic


def _pending_value(e) -> bool:
    """e has no data yet, or holds data but keeps the op that computed it (the key walks
    through it: an embedding's `idx.reshape(-1)`, realised by its bounds check). (NOTE: a
    pending e's op is not read: that would build a PendingExpr's Op.)"""
    return isinstance(e, Expr) and not e.symbolic and (e.data is None or e.op is not None)


def learn(run, walk, plan, targets: list, executed: set):
    """Keeps the shape of a backward that replayed plan (single root, no seeds)."""
    if not ENABLED or len(run.roots) != 1 or run.seeds[0] is not None or \
            plan.unfollowable:
        return
    for kept in _SHAPES:
        if kept.plan is plan:      # the same key, so the same shape: refused for a moment
            return
    shape = Shape()
    why = _learn_nodes(shape, run, walk.index)
    if why is None:
        why = _learn_targets(shape, run, walk.index, targets)
    if why is None:
        why = _learn_pending(shape, run, walk.index)
    if why is None and not all(p in shape.sources for p in plan.captures + plan.realize):
        why = "an input of the program is not a node's input or output"
    if why is not None:
        # what refused it is fixed by the plan's key (leaves, templates, pending values and
        # their sharing, the updated tensors): not tried again for this plan (NOTE: the
        # transformer block's learn reached its embedding's node each step: ~100 us)
        plan.unfollowable = True
        STATS["unfollowable"] += 1
        if logging_enabled():
            log.info(f"backward follow: shape not kept: {why}")
        return
    shape.sources = {p: shape.sources[p] for p in plan.captures + plan.realize}
    shape.root_nr = run.root_edges[0][1]
    shape.executed = [i for i, n in enumerate(run.order) if n in executed]
    shape.plan = plan
    shape.pos = shape.slots = shape.found = None    # (this step's nodes, ids, Exprs)
    _SHAPES.insert(0, shape)
    del _SHAPES[_SHAPES_LIMIT:]
    STATS["learnt"] += 1


def _learn_nodes(shape: Shape, run, index: dict) -> str | None:
    """Fills shape's per-node lists from run's graph; the reason it cannot, or None."""
    order = run.order
    if run.root_edges[0][0] is not order[0]:
        return "the root is a leaf"
    pos = shape.pos = {node: i for i, node in enumerate(order)}
    reads = bounded.STATS["reads"]
    for i, node in enumerate(order):
        if node.hooks or node.retained:
            return f"{node.name()} has a tensor hook or retain_grad"
        cls = type(node)
        tm = node.template
        if cls.emit_vjp is _OP_VJP:
            if tm is None or not _replayed(node, tm, reads):
                return f"{node.name()} is not a template node (or was changed)"
        elif cls is not AccumulateGrad:
            return f"{node.name()} is a custom or special node"
        shape.classes.append(cls)
        shape.templates.append(tm[0] if tm is not None else None)
        shape.edges.append(tuple([(pos[e[0]], e[1]) if e is not None else None
                                  for e in node.edges]))
        codes = []
        for k, (e, edge) in enumerate(zip(node.input_exprs, node.edges)):
            if e is None:
                codes.append(None)
            elif edge is not None and type(edge[0]) is not AccumulateGrad:
                if edge[0].output_exprs[edge[1]] is not e:
                    return f"an input of {node.name()} is not its node's output"
                codes.append(-1)
            elif _plain_leaf(e) or _pending_value(e):
                codes.append(_slot(shape, e))
            else:
                return f"an input of {node.name()} is not a data leaf or pending value"
            _source(shape.sources, index, e, ("in", i, k))
        shape.ins.append(tuple(codes))
        outs = node.output_exprs
        shape.has_data.append(tuple([o is not None and o.data is not None for o in outs]))
        for k, o in enumerate(outs):
            _source(shape.sources, index, o, ("out", i, k))
    return None


def _learn_targets(shape: Shape, run, index: dict, targets: list) -> str | None:
    for j, (edge, t) in enumerate(targets):
        if type(edge[0]) is not AccumulateGrad or edge[1] != 0 or t is not edge[0].variable:
            return "a target is not a leaf's AccumulateGrad"
        shape.targets.append(shape.pos[edge[0]])
        g = t._grad
        if g is None:
            shape.grads.append(None)
        elif g._grad_fn is None and (_plain_leaf(g._expr) or _pending_value(g._expr)):
            # numbered with the leaves: the key sees an old .grad shared with another
            shape.grads.append(_slot(shape, g._expr))
            _source(shape.sources, index, g._expr, ("grad", j, 0))
        else:
            return "a .grad has a grad_fn or is not a data leaf or pending value"
    return None


def _learn_pending(shape: Shape, run, index: dict) -> str | None:
    """Keeps the key of the pending slots' graphs and which slots hold the values
    updated_pending() lists; the reason it cannot, or None."""
    leaves = shape.found
    shape.pending = [not _plain_leaf(e) for e in leaves]
    why = _same_updates(shape, leaves)
    if why is not None or not any(shape.pending):
        return why
    found = _pending_walk(shape.pending, leaves, set(map(id, leaves)), run.order)
    if isinstance(found, str):
        return found
    shape.pending_key = found[0]
    for j, e in enumerate(found[1]):
        _source(shape.sources, index, e, ("sub", 0, j))
    return None


def _same_updates(shape: Shape, leaves: list) -> str | None:
    """While learning (shape.updated empty then) keeps, else checks, the slots of the
    pending values of tensors updated in place (the key lists them, in this order)."""
    slots = []
    for e in updated_pending([]):
        slot = shape.slots.get(id(e)) if shape.slots is not None else _slot_of(e, leaves)
        if slot is None or not shape.pending[slot]:
            return "a tensor updated in place is pending outside the graph's inputs"
        slots.append(slot)
    if shape.slots is not None:
        shape.updated = tuple(slots)
    elif tuple(slots) != shape.updated:
        return "other tensors updated in place are pending"
    return None


def _slot_of(e, leaves: list) -> int | None:
    for slot, x in enumerate(leaves):
        if x is e:
            return slot
    return None


def _outputs(order: list) -> set:
    """id() of the output Exprs of the graph's nodes."""
    out = set()
    for node in order:
        for o in node.output_exprs:
            if o is not None:
                out.add(id(o))
    return out


def _pending_walk(pending: list, leaves: list, taken: set, order: list):
    """(key, Exprs in walk order) of the graphs behind the pending slots (one walk, so what
    they share is numbered in the key); or the reason (a str) they are out of reach:
    unkeyable or large, or sharing an Expr with a data leaf or an output of a node of order
    (taken: id() of the slots' Exprs)."""
    roots = [e for e, p in zip(leaves, pending) if p]
    try:
        exprs, index, parts = walk(roots, True, _PENDING_LIMIT)
    except Unkeyable as why:
        return f"a pending input: {why}"
    at = tuple([index[id(e)] for e in roots])
    outputs = None
    for i, e in enumerate(exprs):
        # a node's outputs are marked recorded (recording.attach_node, inplace._adopt_node):
        # the set of them is made only when the walk meets a recorded Expr (the updates of
        # a hand-written loop hold none)
        if e.recorded:
            if outputs is None:
                outputs = _outputs(order)
            if id(e) in outputs:
                return "a pending input is or reads a node's output"
        if id(e) in taken and i not in at:
            return "a pending input reads a leaf of the graph"
    return (parts, at), exprs


def _slot(shape: Shape, e) -> int:
    """e's leaf slot, numbered by first use."""
    slot = shape.slots.get(id(e))
    if slot is None:
        slot = shape.slots[id(e)] = len(shape.leaf_types)
        shape.leaf_types.append(e.value.type)
        shape.found.append(e)
    return slot


def _source(sources: dict, index: dict, e, where: tuple):
    p = index.get(id(e))
    if p is not None and p not in sources:
        sources[p] = where


def follow(root) -> tuple | None:
    """(plan, Exprs by walk position, targets, executed nodes) if root's graph has one of
    the kept shapes; else None."""
    if not _SHAPES or not ENABLED:
        return None
    first = None
    for k, shape in enumerate(_SHAPES):
        code = shape.check if CODE_ENABLED else None
        found = _check(shape, root) if code is None else code(root)
        if not isinstance(found, str):
            if k:
                _SHAPES.insert(0, _SHAPES.pop(k))
            if code is not None:
                STATS["generated"] += 1
            shape.follows += 1
            if shape.follows == follow_code.CODE_AFTER and CODE_ENABLED:
                shape.check = follow_code.make_check(shape, _check_leaf, _pending_walk,
                                                     _same_updates, STATS)
            return found
        first = first or found
    STATS["refused"] += 1
    if logging_enabled():
        log.info(f"backward follow off for this call: {first} (the last kept shape)")
    return None


def _check(shape: Shape, root):
    """The follow tuple, or the reason (a str) the graph is not the kept shape."""
    node = root._grad_fn
    if node is None or type(node) is not shape.classes[0] or root._output_nr != shape.root_nr:
        return "another root"
    if root._expr is not node.output_exprs[shape.root_nr]:
        return "the root was changed in place"
    n = len(shape.classes)
    order = [None] * n
    order[0] = node
    placed = {node}
    classes, templates, edges_at, ins_at = (shape.classes, shape.templates, shape.edges,
                                            shape.ins)
    reads = bounded.STATS["reads"]
    leaves: list = [None] * len(shape.leaf_types)
    seen: set = set()                    # id() of the leaves found
    for i in range(n):
        node = order[i]
        if node is None:
            return "another graph"
        if node.hooks or node.retained:
            return f"{node.name()} has a tensor hook or retain_grad"
        if templates[i] is not None:
            why = _same_template(node, templates[i], shape.has_data[i], reads)
            if why:
                return why
        edges = node.edges
        want = edges_at[i]
        if len(edges) != len(want):
            return "another graph"
        codes = ins_at[i]
        inputs = node.input_exprs
        for k, e in enumerate(edges):
            w = want[k]
            if e is None or w is None:
                if e is not w:
                    return "another graph"
            else:
                p, nr = w
                child = e[0]
                if e[1] != nr or type(child) is not classes[p]:
                    return "another graph"
                there = order[p]
                if there is None:
                    if child in placed:
                        return "another graph"
                    order[p] = child
                    placed.add(child)
                elif there is not child:
                    return "another graph"
            # the input, inline (NOTE: a call per input cost ~1 us of the ~4 per node)
            code, x = codes[k], inputs[k]
            if code == -1:                       # the edge's node output (e is not None)
                if x is None or e[0].output_exprs[e[1]] is not x:
                    return "an input is not its node's output"
            elif code is None:
                if x is not None:
                    return "another graph"
            elif leaves[code] is not x:
                why = _check_leaf(code, x, leaves, seen, shape)
                if why:
                    return why
    return _finish(shape, order, leaves, seen)


def _same_template(node, template, has: tuple, reads: int) -> str | None:
    """node must still be its Template's replay (node_walk.add_stops's conditions), with
    the kept outputs holding data."""
    tm = node.template
    if tm is None or tm[0] is not template or not _replayed(node, tm, reads):
        return f"{node.name()} is not the kept template node"
    for k, o in enumerate(tm[1]):
        if (o.data is not None) is not has[k]:
            return "a value of the graph was read (it holds data now)"
    return None


def _replayed(node, tm: tuple, reads: int) -> bool:
    """node's outputs are still those its Template replay made (no op-by-op read since, no
    in-place rewrite) and it was not differentiated before (node_walk.add_stops, replay)."""
    return tm[2] == reads and node.output_exprs == tm[1] and \
        (node._local is None or node.given_fn is not None)


def _check_leaf(code: int, x, leaves: list, seen: set, shape: Shape) -> str | None:
    """x must be the first use of leaf slot `code` (same sharing as kept): a data leaf, or
    for a pending slot a value without data (its graph is checked in _finish)."""
    if not shape.pending[code]:
        if x is None or type(x) is not Expr or x.data is None or x.op is not None or \
                x.symbolic:
            return "an input is pending or not a data leaf"
    elif not _pending_value(x):
        return "a pending input is a data leaf now, or symbolic"
    if leaves[code] is not None or id(x) in seen:
        return "another sharing of inputs"
    t = x.value.type
    want = shape.leaf_types[code]
    if t is not want and t != want:
        return "another input type"
    leaves[code] = x
    seen.add(id(x))
    return None


def _finish(shape: Shape, order: list, leaves: list, seen: set):
    targets = []
    for j, p in enumerate(shape.targets):
        node = order[p]
        t = node.variable
        g = t._grad
        want = shape.grads[j]
        if g is None:
            if want is not None:
                return "a .grad is gone"
        elif want is None or g._grad_fn is not None:
            return "a .grad appeared or has a grad_fn"
        else:
            why = None if leaves[want] is g._expr else \
                _check_leaf(want, g._expr, leaves, seen, shape)
            if why:
                return f"a .grad: {why}"
        targets.append(((node, 0), t))
    why = _same_updates(shape, leaves)
    if why is not None:
        return why
    found = None
    if shape.pending_key is not None:
        found = _pending_walk(shape.pending, leaves, seen, order)
        if isinstance(found, str):
            return found
        if found[0] != shape.pending_key:
            return "a pending input's graph is another"
    exprs = {}
    for p, (kind, a, b) in shape.sources.items():
        if kind == "in":
            exprs[p] = order[a].input_exprs[b]
        elif kind == "out":
            exprs[p] = order[a].output_exprs[b]
        elif kind == "grad":
            exprs[p] = targets[a][1]._grad._expr
        else:
            exprs[p] = found[1][b]
    plan = shape.plan
    for p in plan.captures:
        if exprs[p].data is None:
            return "an input of the program is pending"
    if found is not None:
        STATS["pending"] += 1
    return plan, exprs, targets, [order[p] for p in shape.executed]
