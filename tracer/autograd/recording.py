"""Recording the autograd graph: the hook every user-facing op calls (tracer.record).

`on_op(name, saves, args, kwargs, result)` runs after each outermost `@torch_op`. When grad
mode is on and a Tensor argument requires grad, it attaches one `OpNode` (named as
PyTorch names the op's backward node, e.g. `MulBackward0`) to the op's floating-point
results, with an edge per Tensor argument and a `SavedTensor` per tensor that PyTorch's
node would save (`saves`: argument positions and/or "out"), for the in-place checks.
Otherwise the results are left alone: no node, `requires_grad` False.

An `OpNode`'s derivative is the IR autodiff of its local Function (the ops the call
recorded, cut from the graph between its inputs and outputs; see emitter.py).
"""
from __future__ import annotations

from tracer import bounded, record
from tracer.autograd.emitter import cut_function, inline_vjp
from tracer.autograd.grad_mode import _state as _grad_mode  # (read per op: no call)
from tracer.autograd.grad_mode import is_grad_enabled
from tracer.autograd.node_names import PLAIN_NAMES, is_number, node_name
from tracer.autograd.nodes import Node, SavedTensor, edge_of, node_class
from tracer.autograd.views import VIEW_OPS, mark_views
from tracer.errors import user_location
from tracer.expr import apply_op
from tracer.tensor import Tensor

FLOAT = ("f32", "f64")
_BINARY_ARITH = ("Add", "Sub", "Mul", "Div", "Rsub")


class OpNode(Node):
    """A node whose backward is the IR autodiff of the ops it recorded.

    `template`: (op_memo Template, its output Exprs, bounded's read count) when the node's
    ops were replayed from a template: the backward key stops at its outputs (node_walk.py).
    """
    _local = None              # (fn, captures, ...) once local_function has cut it

    def local_function(self):
        """(fn, captures, param_of, distinct, result_nrs): fn's params are the distinct
        input Exprs, then captures; param_of[i] is the param index of input i (None if
        repeated); fn.results[k] is output number result_nrs[k]."""
        if self._local is None:
            distinct, index, param_of = [], {}, []
            for e in self.input_exprs:
                if e is None or id(e) in index:
                    param_of.append(None)          # x * x: the gradient goes in once
                    continue
                index[id(e)] = len(distinct)
                param_of.append(len(distinct))
                distinct.append(e)
            nrs = [i for i, e in enumerate(self.output_exprs) if e is not None]
            fn, captures = cut_function(self.name(), distinct,
                                        [self.output_exprs[i] for i in nrs])
            self._local = (fn, captures, param_of, distinct, nrs)
        return self._local

    def emit_vjp(self, em, out_cts, wanted):
        fn, captures, param_of, distinct, nrs = self.local_function()
        wrt = sorted({param_of[i] for i, w in enumerate(wanted)
                      if w and param_of[i] is not None and distinct[param_of[i]].type.dtype
                      in FLOAT})
        if not wrt:
            return [None] * len(wanted)
        args = [em.value(e) for e in distinct] + [em.value(c) for c in captures]
        cts = [out_cts[i] for i in nrs]
        grads = dict(zip(wrt, inline_vjp(em, fn, args, tuple(wrt), cts)))
        # an edge of the graph always carries a gradient, zeros included (PyTorch: the
        # input of zero_() or copy_() gets a zero .grad, not None)
        return [(grads.get(p) or em.zeros(distinct[p].type)) if p in grads else None
                for p in param_of]


def _flatten(x, out: list):
    if isinstance(x, Tensor):
        out.append(x)
    elif isinstance(x, (list, tuple)):
        for y in x:
            _flatten(y, out)
    return out


def _inputs(name: str, args, kwargs):
    """The Tensor arguments, in order; then None for a number operand of binary arithmetic,
    which PyTorch's next_functions show as (None, 0) (not for `1 - x`: RsubBackward1)."""
    if not kwargs:
        for a in args:
            if not isinstance(a, Tensor):
                break
        else:
            return list(args)     # only Tensors: nothing to flatten, no number operand
    out = []
    for a in args:
        if isinstance(a, Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            _flatten(a, out)
    for v in kwargs.values():
        _flatten(v, out)
    if name in _BINARY_ARITH and not (name == "Sub" and args and is_number(args[0])):
        for a in args[:2]:
            if is_number(a):
                out.append(None)
                break
    return out


# PyTorch version-checks an operand of mul/div only when the other operand's gradient needs
# it: after `y = x * 2.0`, changing x in place is no error (saves position: needs position);
# so for the products (matmul's variants: Dot, Mv, Mm, Squeeze, UnsafeView; Addmm's mat1/2)
_PRODUCT = {0: 1, 1: 0}
_SAVED_FOR_OTHER = {"Mul": _PRODUCT, "Div": {0: 1}, "Mm": _PRODUCT, "Bmm": _PRODUCT,
                    "Mv": _PRODUCT, "Dot": _PRODUCT, "Inner": _PRODUCT, "Squeeze": _PRODUCT,
                    "UnsafeView": _PRODUCT, "Addmm": {1: 2, 2: 1}}


def _needed_saves(name: str, saves, args) -> tuple:
    rule = _SAVED_FOR_OTHER.get(name)
    if rule is None:
        return saves
    out = []
    for s in saves:
        other = rule.get(s) if type(s) is int else None
        if other is not None:
            arg = args[other] if other < len(args) else None
            # (arg.requires_grad, inline: a property call per save of every product)
            if not (isinstance(arg, Tensor) and (arg._requires_grad or
                                                 arg._grad_fn is not None)):
                continue
        out.append(s)
    return tuple(out) if len(out) != len(saves) else saves


def _saved(saves, args, outputs) -> list[tuple[Tensor, int | None]]:
    saved = []
    for s in saves:
        if type(s) is int:
            if s < len(args):
                a = args[s]
                if isinstance(a, Tensor):         # (most ops: one Tensor per position)
                    saved.append((a, None))
                else:
                    saved += [(t, None) for t in _flatten(a, [])]
        elif s == "out":
            saved += [(t, i) for i, t in enumerate(outputs) if t is not None]
    return saved


def _outputs(result, inputs) -> list:
    """The result's Tensors that get the node (floating ones; others keep no grad_fn)."""
    outs = _flatten(result, []) if isinstance(result, (tuple, list)) else (
        [result] if isinstance(result, Tensor) else [])
    out = []
    for t in outs:
        if t._expr.value.type.dtype not in FLOAT:
            t = None
        else:
            for i in inputs:
                if t is i:
                    t = None
                    break
        out.append(t)
    return out


def _distinct_output_expr(t: Tensor, inputs, loc):
    """An op that returned an input's own Expr gets a fresh one (a no-op reshape), so the
    node's outputs are distinct from its inputs in the Expr graph."""
    e = t._expr
    for i in inputs:
        if i is not None and i._expr is e:
            t._expr = apply_op("reshape", (e,), loc, shape=e.type.shape)[0]
            return


def attach_node(node_cls, inputs: list, result, saves=(), args=(), loc=None) -> Node | None:
    """Makes a node_cls for the Tensors of `result` computed from `inputs`; returns it."""
    if type(result) is Tensor:               # one result (most ops), _outputs inline
        out = result._expr
        if out.value.type.dtype not in FLOAT:
            return None
        shared = False                      # an input's own Expr (_distinct_output_expr)
        for i in inputs:
            if result is i:
                return None
            if i is not None and i._expr is out:
                shared = True
        if shared:
            _distinct_output_expr(result, inputs, loc)
            out = result._expr
        outputs = [result]
        out_exprs = [out]
    else:
        outputs = _outputs(result, inputs)
        live = False
        for t in outputs:
            if t is not None:
                _distinct_output_expr(t, inputs, loc)
                live = True
        if not live:
            return None
        out_exprs = [t._expr if t is not None else None for t in outputs]
    exprs, edges = [], []
    for t in inputs:
        if t is None:
            exprs.append(None)
            edges.append(None)
            continue
        exprs.append(t._expr)
        if t._grad_fn is not None:            # edge_of, inline (hot: every recorded op)
            edges.append((t._grad_fn, t._output_nr))
        else:
            edges.append(edge_of(t))
    node = node_cls.__new__(node_cls)
    node._setup(exprs, edges, out_exprs, loc)
    for nr, t in enumerate(outputs):
        if t is not None:
            t._grad_fn = node
            t._output_nr = nr
            t._expr.recorded = True
    if saves:
        node.saved = [SavedTensor(t, node, nr) for t, nr in _saved(saves, args, outputs)]
    return node


def on_op(name: str, saves, args, kwargs, result):
    """The hook tracer.record calls after every outermost user-facing op."""
    state = record._state
    replayed = state.replayed                # (record._State's fields have class defaults)
    if replayed is not None:
        state.replayed = None
    if name in VIEW_OPS:
        mark_views(name, args, result)
    if _grad_mode.enabled:                   # (is_grad_enabled, inline)
        _node_for(name, saves, args, kwargs, result, replayed, state.hook_loc)
    return result


def record_node(name: str, saves, args: tuple, result, hit, loc):
    """on_op for a call that is not a view op, with positional arguments, replayed from the
    Template `hit` (record._replay_recorded)."""
    if _grad_mode.enabled:
        if DIRECT_ENABLED:
            _template_node(name, saves, args, result, hit, loc)
        else:
            _general_node(name, saves, args, _NO_KWARGS, result, (hit, result), loc)


def _template_node(name: str, saves, args: tuple, result, hit, loc):
    """The node of a call with positional arguments whose result came from the Template
    `hit` (replayed, or recorded by the body just run). What the Template's key fixes is
    worked out on its first call (`hit.node_cls`, _direct_recipe): the node class, which
    arguments are the node's inputs (the Tensors, and a None for a number operand of
    arithmetic), and that the one result is a new floating Tensor (it gets the node and
    shares no Expr with an input). Later calls make the node here without
    _general_node's and attach_node's tests of those: the same node (class, edges, saves,
    Template, line)."""
    recipe = hit.node_cls
    if recipe is None:
        recipe = hit.node_cls = _direct_recipe(name, args, hit, result)
    if recipe is False:
        _general_node(name, saves, args, _NO_KWARGS, result, (hit, result), loc)
        return
    cls, at, number = recipe
    inputs = args if at is None else [args[i] for i in at]
    for t in inputs:
        if t._requires_grad or t._grad_fn is not None:
            break
    else:
        return
    needed = _needed_saves(name, saves, args) if saves else saves
    out = result._expr
    exprs, edges = [], []
    for t in inputs:
        exprs.append(t._expr)
        if t._grad_fn is not None:            # (edge_of, inline)
            edges.append((t._grad_fn, t._output_nr))
        else:
            edges.append(edge_of(t))
    if number:                                # (_inputs: PyTorch's (None, 0) edge)
        exprs.append(None)
        edges.append(None)
    node = cls.__new__(cls)
    node._setup(exprs, edges, [out], loc or user_location())
    result._grad_fn = node
    result._output_nr = 0
    out.recorded = True
    if needed:
        node.saved = [SavedTensor(t, node, nr) for t, nr in _saved(needed, args, [result])]
    if needed is not saves:
        node.saves_unchecked = True
    node.template = (hit, [out], bounded.STATS["reads"])
    DIRECT_STATS["nodes"] += 1


def _direct_recipe(name: str, args: tuple, hit, result):
    """record_node's (node class, positions of the Tensor arguments or None for all, whether
    a None input follows) for the calls replayed from the Template hit, or False when
    _general_node makes their nodes (a result that is not one new floating Tensor, an argument
    of a kind _inputs flattens). The key fixes each argument's kind, so all of it."""
    if not hit.single or hit.outputs[0][0] != "new" or type(result) is not Tensor or \
            result._expr.value.type.dtype not in FLOAT:
        return False
    at = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    inputs = _inputs(name, args, _NO_KWARGS)
    number = len(inputs) == len(at) + 1 and inputs[-1] is None
    if len(inputs) != len(at) + number:
        return False
    for i, t in zip(at, inputs):              # (by identity: Tensor's == records an op)
        if args[i] is not t:
            return False
    cls = _PLAIN_CLASSES.get(name)
    if cls is None:
        cls = _overload_class(name, args, _NO_KWARGS, (hit, result), result)
    return cls, None if len(at) == len(args) else tuple(at), number


_NO_KWARGS: dict = {}
# tests and comparison: off makes every node through _general_node
DIRECT_ENABLED = True
DIRECT_STATS = {"nodes": 0}     # nodes _template_node made from a Template's recipe


def _node_for(name: str, saves, args, kwargs, result, replayed, loc):
    """The node of an op's call when a Tensor operand requires grad (grad mode on)."""
    if replayed is not None and replayed[1] is result and not kwargs and DIRECT_ENABLED:
        _template_node(name, saves, args, result, replayed[0], loc)
    else:
        _general_node(name, saves, args, kwargs, result, replayed, loc)


def _general_node(name: str, saves, args, kwargs, result, replayed, loc):
    """_node_for for any call: the node's inputs, class and outputs worked out from the
    arguments and the result."""
    inputs = _inputs(name, args, kwargs)
    for t in inputs:
        if t is not None and (t._requires_grad or t._grad_fn is not None):
            break
    else:
        return
    cls = _PLAIN_CLASSES.get(name)
    if cls is None:
        cls = _overload_class(name, args, kwargs, replayed, result)
    needed = _needed_saves(name, saves, args) if saves else saves
    if replayed is None or replayed[1] is not result:
        outs = None
    elif type(result) is Tensor:             # (_template_outputs' common case, inline)
        outs = [result._expr]
    else:
        outs = _template_outputs(replayed, result)
    # (record.op_location, inline: the hooks run with the op's location set)
    node = attach_node(cls, inputs, result, needed, args, loc or user_location())
    if node is not None:
        if needed is not saves:
            node.saves_unchecked = True
        if outs is not None and node.output_exprs == outs:
            node.template = (replayed[0], outs, bounded.STATS["reads"])


def _template_outputs(replayed, result) -> list | None:
    """The output Exprs of the op_memo Template this call replayed (record._memoised), if
    result is that replay's and each of its results is a new Tensor (a node output)."""
    if replayed is None or replayed[1] is not result:
        return None
    if type(result) is Tensor:
        return [result._expr]
    outs = []
    for t in result:
        if type(t) is not Tensor:
            return None
        outs.append(t._expr)
    return outs


# op name -> node class, for names without overloads (on_op's node_name + node_class)
_PLAIN_CLASSES: dict = {}
# (op_memo Template, op name) -> node class, for the overloaded names (Sub, Pow, Clamp, Sum):
# the overload depends only on which arguments are numbers, Tensors, dims or keywords,
# which the Template's op-memo key fixes (two_layer_net's forward: 4 of its 6 ops)
_TEMPLATE_CLASSES: dict = {}
_TEMPLATE_CLASSES_LIMIT = 4096


def _overload_class(name: str, args, kwargs, replayed, result) -> type:
    """on_op's node class for an op whose name is not in _PLAIN_CLASSES (yet)."""
    if replayed is None or replayed[1] is not result:
        cls = node_class(node_name(name, args, kwargs), OpNode)
        if name in PLAIN_NAMES:
            _PLAIN_CLASSES[name] = cls
        return cls
    key = (replayed[0], name)
    cls = _TEMPLATE_CLASSES.get(key)
    if cls is None:
        cls = node_class(node_name(name, args, kwargs), OpNode)
        if name in PLAIN_NAMES:
            _PLAIN_CLASSES[name] = cls
        else:
            if len(_TEMPLATE_CLASSES) >= _TEMPLATE_CLASSES_LIMIT:
                _TEMPLATE_CLASSES.clear()
            _TEMPLATE_CLASSES[key] = cls
    return cls


def record_call(name: str, fn, inputs: list, outputs: list) -> Node | None:
    """Makes `outputs` (Tensors that fn computed from `inputs`) differentiable.

    For code that runs a whole Function at once instead of recording ops, such as a jitted
    function called on Tensors that require grad: fn's params are one per input (a Tensor,
    or an Expr of a capture), its results one per output. The node's backward is the IR
    autodiff of fn, like any recorded op's.
    """
    if not is_grad_enabled():
        return None
    pairs = [(x._expr, edge_of(x)) if isinstance(x, Tensor) else (x, None) for x in inputs]
    if not any(edge is not None for _, edge in pairs):
        return None
    cls = node_class(node_name(name, (), {}), OpNode)
    node = attach_node(cls, [x if isinstance(x, Tensor) else None for x in inputs], outputs,
                       loc=user_location())
    if node is not None:
        node.input_exprs = [e for e, _ in pairs]
        node.edges = [edge for _, edge in pairs]
        exprs = [e for e, _ in pairs]
        node._local = (fn, [], list(range(len(exprs))), exprs, list(range(len(fn.results))))
        node.given_fn = fn        # replay keys the node by this Function (replay.py)
    return node


def install():
    if on_op not in record.op_hooks:
        record.op_hooks.append(on_op)
    record.NODE_MAKER = (on_op, record_node)
    record.GRAD_HOOKS[on_op] = VIEW_OPS      # only views matter when nothing requires grad
