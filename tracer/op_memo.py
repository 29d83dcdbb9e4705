"""Replaying a user-facing op's primitives: a training step's ops skip their Python bodies.

An op such as `F.linear`, `cross_entropy` or `a * x` runs Python on every call (operand
promotion, broadcasting, casts, shape checks) before it records the few primitives it
decides on. Given the same kinds of arguments (Tensor types, and the same plain Python
values), those decisions are the same: the op records the same primitives, with the same
params, wired the same way. So the first call of an op with a new *key* records which
primitives its body applied (its template: each op's primitive, params, result types, and
where its operands come from: an argument, or an earlier op of the template), and later
calls with that key build those Ops and Exprs directly, as `expr.apply_op`'s cache hit does,
without running the body.

What makes that sound, and when a call is not memoised (the body runs as before):
  - only the ops listed in OPS: their bodies depend on nothing but the key (no data reads,
    no warnings, no random state, no global state other than the default float dtype,
    which is part of the key); an op whose body validates data (`cross_entropy`'s target
    bounds) has a guard (`guard`) that redoes that check before a replay;
  - every argument is a Tensor (not symbolic), a number, a string, None or a tuple of ints;
    which Tensor arguments are the same value is part of the key (`x * x` is not `a * b`);
  - the body's primitives read only the arguments and each other (a Tensor made from data
    inside the body, or a Function applied whole, refuses the key), carry only plain
    params (no regions, no array constants), leave the arguments unchanged, and the result
    is a plain new Tensor or one of the arguments (or a tuple of those);
  - not inside a functional trace (captures are being noted), and the body raised nothing.
A refused key is remembered, so it costs one lookup afterwards. The autograd node, views
and hooks (record.torch_op's hooks) run after the op as before, on the replayed result.
"""
from __future__ import annotations

import weakref

from ir import Op, Value
from tracer import pending_expr
from tracer.dtypes import default_float
from tracer.expr import Expr, _int_tree
from tracer.tensor import Tensor

# the torch_op names whose bodies were checked for the conditions above (tracer/ops/
# elementwise.py, reduce.py, linalg.py, shape.py, nn_functional.py, tracer/nn/functional.py);
# Dot, Mv, Squeeze and UnsafeView: matmul's other ranks (and dot, mv, tensordot, squeeze);
# Softmax/LogSoftmax (an implicit dim's warning is their guard's), NativeLayerNorm (tracer/nn/
# functional_norm.py); Exp..Sigmoid: elementwise._float_unary's (a cast and one primitive);
# the view ops View (reshape, view, flatten, unflatten, einsum), Permute, Transpose, Split,
# SplitWithSizes, Unsqueeze: their bodies only reshape/transpose/slice, and a replayed result
# joins its base's storage in the autograd hook (views.mark_views) as the body's does (a
# followed one in step_follow.follow); Zero (zero_'s
# value, tracer/autograd/inplace.py: a constant of the argument's type); IndexSelect (the
# embedding's lookup): its guard checks the index values (tracer/ops/indexing.py); Clone (a
# reshape to its own shape), the comparisons Eq..Ge (operands() and one primitive); CopySlices
# (`x[key] = v`, tracer/autograd/inplace.py): only its where(mask, v, x) form keeps a template
# (index_put._put_by_mask reads the mask's type, never its values); every other key's body
# reads the index values into a constant (tensor_from_array), which refuses the key, as does
# views._place's NumPy positions argument (op_memo does not key it)
OPS = frozenset({"Zero", "Clone", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "CopySlices",
                 "Add", "Sub", "Mul", "Div", "Neg", "Relu", "Pow", "Clamp", "Addmm",
                 "Mm", "Sum", "Mean", "MseLoss", "NllLoss", "T", "Dot", "Mv", "Squeeze",
                 "UnsafeView", "Softmax", "LogSoftmax", "NativeLayerNorm", "Exp", "Log",
                 "Sqrt", "Rsqrt", "Tanh", "Sigmoid", "View", "Permute", "Transpose", "Split",
                 "SplitWithSizes", "Unsqueeze", "IndexSelect"})
# name -> check(args, kwargs) run before a replay (raises what the body would have raised)
GUARDS: dict = {}
_REFUSED = object()
_MEMO: dict = {}
_MEMO_LIMIT = 4096
# calls replayed, and templates recorded (the tests read these)
STATS = {"replays": 0, "templates": 0, "refused": 0}
# bumped whenever the table is cleared: what was noted of it before (tracer/autograd/
# quiet_sites.py's call sites) is stale then
GENERATION = [0]


class Template:
    """The primitives one op applied for one key, and where its results came from."""
    __slots__ = ("ops", "outputs", "single", "pending_outs", "node_cls")

    def __init__(self, ops: list, outputs: list, single: bool):
        self.ops = ops              # (Primitive, operand slots, params, result types, frozen)
        self.outputs = outputs      # per result: ("arg", tensor index) or ("new", slot)
        self.single = single
        self.pending_outs = None    # pending_expr.out_types of it (made on first use)
        # the autograd node class of a call replayed from it whose node
        # recording.record_node can make directly (False: it cannot; None: not known yet)
        self.node_cls = None

    def replay_pending(self, tensors: list, loc):
        """replay's results on pending Exprs (tracer/pending_expr.py): the Ops are built
        only if something reads them. A replayed backward never does (its key stops at a
        template node's outputs), so a recorded forward op builds one Expr per result."""
        outs = self.pending_outs
        if outs is None:
            outs = self.pending_outs = pending_expr.out_types(self, len(tensors))
        return pending_expr.replay(self, outs, [t._expr for t in tensors], tensors, loc,
                                   Tensor)

    def replay(self, tensors: list, loc):
        # NOTE: one- and two-operand primitives skip the generator tuples: b * x (a 0-d b,
        # two primitives) replays in 4.0-4.6 -> 3.3-3.5 us (timeit, same process, load ~3)
        slots = [t._expr for t in tensors]
        for prim, refs, params, types, frozen in self.ops:
            n = len(refs)
            if n == 2:
                a, b = slots[refs[0]], slots[refs[1]]
                args, ins = (a, b), (a.value, b.value)
            elif n == 1:
                a = slots[refs[0]]
                args, ins = (a,), (a.value,)
            else:
                args = tuple([slots[r] for r in refs])
                ins = tuple([a.value for a in args])
            if len(types) == 1:                  # most primitives: one result
                v = Value(types[0])
                op = Op(prim, ins, (v,), dict(params), (), loc)
                op.frozen = frozen
                slots.append(Expr(v, op, args))
                continue
            op = Op(prim, ins, tuple([Value(t) for t in types]), dict(params), (), loc)
            op.frozen = frozen
            made = [Expr(r, op, args) for r in op.results]
            op.exprs = [weakref.ref(e) for e in made]    # as expr.apply_op: live siblings
            slots.extend(made)
        outputs = self.outputs
        if self.single:
            kind, i = outputs[0]
            return tensors[i] if kind == "arg" else Tensor(slots[i])
        return tuple([tensors[i] if kind == "arg" else Tensor(slots[i]) for kind, i in outputs])


def key_of(fn, args: tuple, kwargs: dict):
    """(key, Tensor arguments in order), or None when an argument is not a plain kind."""
    parts = [fn, default_float()]
    tensors: list[Tensor] = []
    seen: dict = {}
    for a in args:
        if type(a) is Tensor:                    # the common case, inlined
            e = a._expr
            if e.symbolic:
                return None
            parts.append((e.value.type, seen.setdefault(id(e), len(tensors))))
            tensors.append(a)
        elif not _part(a, parts, tensors, seen):
            return None
    for k, v in kwargs.items():
        parts.append(k)
        if not _part(v, parts, tensors, seen):
            return None
    return tuple(parts), tensors


def _part(a, parts: list, tensors: list, seen: dict) -> bool:
    t = type(a)
    if t is float:
        parts.append(a.hex())                    # -0.0 is not 0.0
    elif t is int or t is bool or t is str or a is None:
        parts.append((t, a))                     # 1 is not 1.0 is not True
    elif isinstance(a, Tensor):
        e = a._expr
        if e.symbolic:
            return False
        # the value's type, and which earlier Tensor argument holds the same value
        parts.append((e.value.type, seen.setdefault(id(e), len(tensors))))
        tensors.append(a)
    elif t is tuple and _int_tree(a):
        parts.append(("tuple", a))
    else:
        return False
    return True


def lookup(key):
    """The Template for key, _REFUSED, or None (not seen yet)."""
    return _MEMO.get(key)


def template(key):
    """The Template stored for key, or None (refused, or not seen)."""
    hit = _MEMO.get(key)
    return hit if hit is not _REFUSED else None


def refused(hit) -> bool:
    return hit is _REFUSED


def build(key, tensors: list, versions: list, exprs: list, log: list, result):
    """Stores the template of a call whose primitives were logged (or refuses the key)."""
    template = _template(tensors, versions, exprs, log, result)
    if len(_MEMO) >= _MEMO_LIMIT:
        clear()
    _MEMO[key] = template if template is not None else _REFUSED
    STATS["templates" if template is not None else "refused"] += 1


def _template(tensors: list, versions: list, exprs: list, log: list, result):
    for t, v, e in zip(tensors, versions, exprs):
        if t._expr is not e or t._storage.version != v:
            return None                          # the body changed an argument
    pos: dict[int, int] = {}
    for i, e in enumerate(exprs):
        pos.setdefault(id(e), i)
    n = len(exprs)
    ops = []
    for ins, outs in log:
        if not outs:
            return None
        op = outs[0].op
        if op is None or op.regions or getattr(op, "frozen", None) is None:
            return None
        refs = []
        for e in ins:
            r = pos.get(id(e))
            if r is None:
                return None                      # read something that is not an argument
            refs.append(r)
        if [e.value for e in outs] != list(op.results):
            return None
        ops.append((op.prim, tuple(refs), dict(op.params),
                    tuple([r.type for r in op.results]), op.frozen))
        for e in outs:
            pos[id(e)] = n
            n += 1
    single = isinstance(result, Tensor)
    if not single and type(result) is not tuple:
        return None
    outputs = []
    for o in ([result] if single else result):
        same = [i for i, t in enumerate(tensors) if t is o]
        if same:
            outputs.append(("arg", same[0]))
            continue
        if type(o) is not Tensor or not _plain(o):
            return None
        slot = pos.get(id(o._expr))
        if slot is None or slot < len(exprs):
            return None                          # a new Tensor on an argument's value
        outputs.append(("new", slot))
    return Template(ops, outputs, single)


def _plain(t: Tensor) -> bool:
    st = t._storage
    return (set(vars(t)) <= {"_expr", "_storage"} and st.members is None and st.host is None
            and st.version == 0)


def clear():
    _MEMO.clear()
    GENERATION[0] += 1
