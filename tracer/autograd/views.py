"""Views and aliases: tensors that share one storage, as PyTorch's views do.

PyTorch's `x[0]`, `x[:, 1:]`, `x.view(...)`, `x.t()`, `x.detach()`, `x.data` share memory
with `x`: an in-place change through any of them shows in all, and they share one
version counter. gradjit's values are immutable Exprs, so sharing is modelled instead:
the tensors of a storage are its *members*, each a window on the storage's *root value*,
described by the positions of its elements in the root (computed lazily by evaluating the
view's own shape ops, slice/reshape/transpose/broadcast, with NumPy's view ops on an arange
of the root: the table is itself a strided view, so an expand's repeats cost no memory and
PyTorch's overlap rules read its strides, tracer/autograd/overlap.py). Writing a member
(`propagate`) scatters its new value into the root, recorded as PyTorch's CopySlices
node, and re-derives every other live member from the new root, recorded as AsStrided;
under no_grad only the values change. A member whose ops are not pure shape ops (say an
advanced-indexing copy that was marked by mistake) is treated as a copy: it only shares
the version counter.
"""
from __future__ import annotations

import weakref

import numpy as np

from tracer import step_tape, storage
from tracer.autograd import index_put, overlap, view_refusals
from tracer.autograd.emitter import cut_function
from tracer.autograd.grad_mode import is_grad_enabled, set_grad_enabled
from tracer.ops.operands import user_error
from tracer.ops.write_last import scatter_base
from tracer.record import apply, torch_op
from tracer.storage import SharedCounter
from tracer.tensor import Storage, Tensor, alias_expr, tensor_from_array

# outermost ops whose result is a view of their first argument (PyTorch's view ops)
VIEW_OPS = frozenset(("Select", "Slice", "Unsqueeze", "Alias", "View", "Transpose", "Permute",
                      "T", "Squeeze", "Split", "SplitWithSizes", "Unbind", "Expand",
                      "Diagonal"))
VIEW_OF_LEAF = ("a view of a leaf Variable that requires grad is being used in an in-place "
                "operation.")
OVERLAP = overlap.OVERLAP
NOT_A_VIEW = object()
A_COPY = object()       # a reshape PyTorch copies (of an expand, or a view of one)
_UNSET = object()


def _reshape(a: np.ndarray, shape) -> np.ndarray:
    try:
        return np.reshape(a, shape, copy=False)     # a view, as PyTorch's
    except ValueError:              # not viewable: PyTorch's reshape copies (a view's
        return None                 # table copied is not strided any more)


_SHAPE_PRIMS = {
    "slice": lambda a, start, limit, stride: a[tuple(map(slice, start, limit, stride))],
    "reshape": lambda a, shape: _reshape(a, shape),
    "transpose": lambda a, perm: a.transpose(perm),
    "broadcast_in_dim": lambda a, shape, dims: np.broadcast_to(   # expand: repeated positions
        a.reshape([a.shape[dims.index(i)] if i in dims else 1 for i in range(len(shape))]),
        shape),                                   # (zero strides: no memory)
}


class Member:
    """How a tensor sits in its storage: made from `parent` (None: the root) by the ops
    between parent_expr and expr, or an identical alias of it (detach, .data)."""
    __slots__ = ("parent", "parent_expr", "expr", "identity", "base", "positions", "expanded",
                 "strided", "take", "merged", "multi", "saves")

    def __init__(self, parent, parent_expr, expr, identity: bool, base: Tensor):
        self.parent = parent
        self.parent_expr = parent_expr
        self.expr = expr
        self.identity = identity
        self.base = weakref.ref(base)
        self.positions = _UNSET
        self.expanded = False        # an expand made it or an ancestor: elements may repeat
        self.strided = True          # positions are PyTorch's strides (no reshape copied them)
        self.take = None             # _take_plan's, once asked for
        self.merged = False          # a reshape merging axes of a view: settled at a write
        self.saves = None            # saved-tensor entries made before it was settled
        # an output of split/chunk/unbind or a view of one, not through a detach: PyTorch
        # refuses in-place changes of it that autograd would follow
        self.multi = not identity and parent is not None and parent.multi


def share(base: Tensor, t: Tensor, identity: bool, keep: bool = True):
    """Makes t a member of base's storage (a view of base, or an alias when identity).
    keep=False (an expand): t's value is not held when a read computes through it (it may
    be far larger than its base); the caller derives its positions at once."""
    st = base._storage
    if st.members is None:
        st.members = weakref.WeakSet([base])
        st.root = weakref.ref(base)
        st.root_expr = base._expr
    t._storage = st
    t._member = m = Member(base._member, base._expr, t._expr, identity, base)
    m.expanded = not keep or (base._member is not None and base._member.expanded)
    if m.expanded:                       # positions derived now (mark_views): no op kept,
        t._expr.recorded = False         # no value held (an expand may be far larger than
    else:                                # its base; a read of e[5] computed all of e)
        t._expr.recorded = True          # positions are derived from its ops, keep them
        if base._member is not None:     # (a root's own ops never are: positions are
            base._expr.recorded = True   # relative to it; keeping them kept the history
    st.members.add(t)                    # of `w -= lr * g` alive, a step longer per step)


def detach(self: Tensor) -> Tensor:
    """t.detach(): a new leaf sharing t's value and version counter, without grad."""
    t = Tensor(alias_expr(self._expr))
    share(self, t, identity=True)
    return t


def set_data(self: Tensor, other: Tensor):
    """`t.data = other`: as PyTorch, swaps the value without recording anything and without
    a version bump."""
    if other._expr.type == self._expr.type:
        assign(self, alias_expr(other._expr))
    else:                      # another shape or dtype: a storage of its own
        self._storage, self._member = Storage(), None
        self._expr = alias_expr(other._expr)


def assign(t: Tensor, expr):
    """Points t at a new value (and rewrites the tensors sharing it)."""
    t._expr = expr
    st = t._storage
    if st.members is not None:
        if len(st.members) == 1 and positions(t) is None:
            st.root_expr = expr        # the storage's only tensor, the whole value (hot:
            return                     # every optimizer step of a Parameter)
        propagate(t)


def mark_views(name: str, args, result):
    """Called for every outermost op: the results of view ops join their base's storage."""
    if name not in VIEW_OPS or not args or not isinstance(args[0], Tensor):
        return
    base = args[0]
    outs = result if isinstance(result, (tuple, list)) else (result,)
    for t in outs:
        if not isinstance(t, Tensor) or t is base:
            continue
        if not t._expr.type.size:    # (in-place on it changes nothing, but may be refused)
            m = base._member
            first = None if m is None or m.identity else _view_base(m)
            t._empty_view_of = weakref.ref(base if first is None else first)
            t._storage = SharedCounter(base._storage)
            continue
        expand = name == "Expand"
        share(base, t, identity=False, keep=not expand)
        if name in view_refusals.MULTI_OUTPUT_OPS:
            t._member.multi = True
        if t._member.expanded:    # now, while its ops are there (an expand's value is not
            where = positions(t)  # held), and to know whether PyTorch would copy it
            if where is A_COPY:
                _unshare(t)
        elif name == "View" and base._member is not None and \
                not _splits_only(base._expr.type.shape, t._expr.type.shape):
            t._member.merged = t._storage.unsettled = True   # (_settle)


def _splits_only(src: tuple, dst: tuple) -> bool:
    """Whether reshaping src to dst only splits axes (and adds or drops 1s): always a view."""
    want = [n for n in dst if n != 1]
    j = 0
    for n in (n for n in src if n != 1):
        p = 1
        while p < n and j < len(want):
            p *= want[j]
            j += 1
        if p != n:
            return False
    return j == len(want)


def _settle(st):
    """A reshape merging axes of a view is a view in PyTorch only where strides can express
    it, else a copy. Deriving its positions costs ~50 us, so it is marked when made
    (`merged`) and settled here, before any write reaches the storage: the copies leave."""
    if not st.unsettled:
        return
    st.unsettled = False
    copies = []
    for t in list(st.members):
        m = t._member
        if m is not None and m.merged:
            if positions(t) is A_COPY:           # (derived while still marked)
                copies.append(t)
            m.merged = False
    if copies:              # and the views taken of them meanwhile (positions A_COPY too)
        for t in list(st.members):
            if t._member is not None and positions(t) is A_COPY:
                _unshare(t)
    for t in list(st.members):
        if t._member is not None:
            t._member.saves = None


def _unshare(t: Tensor):
    """t is a copy after all (PyTorch's reshape of an expand it cannot view): a storage of
    its own."""
    st = t._storage                # (WeakSet.discard would compare tensors with ==)
    st.members = weakref.WeakSet([m for m in st.members if m is not t])
    del t.__dict__["_storage"]
    saves, t._member = t._member.saves, None
    for entry in saves or ():      # saved before it was settled: its own counter from now
        entry.retarget(t)


step_tape.VIEW_OPS, step_tape.mark_views = VIEW_OPS, mark_views   # (followed view events)


def _note_saved(t: Tensor, entry):
    """t (of an unsettled storage) was saved for backward (nodes.SavedTensor): if _settle
    finds it a copy, the entry moves to its own counter (PyTorch's copy has one)."""
    m = t._member
    if m is not None:
        m.saves = [entry] if m.saves is None else m.saves + [entry]


storage.saved_unsettled = _note_saved


def positions(t: Tensor):
    """t's elements' flat indices in the root (None: t is the root's value itself)."""
    return _positions(t._member, t._storage.root_expr.type.shape)


def _positions(m: Member | None, root_shape):
    if m is None:
        return None
    if m.positions is _UNSET:
        m.positions = _derive(m, root_shape)
    return m.positions


def _derive(m: Member, root_shape):
    parent = _positions(m.parent, root_shape)
    m.strided = m.parent is None or m.parent.strided
    if parent is NOT_A_VIEW or parent is A_COPY or m.identity:
        return parent
    fn, captures = cut_function("view", [m.parent_expr], [m.expr])
    if captures or any(op.prim.name not in _SHAPE_PRIMS for op in fn.body):
        return NOT_A_VIEW
    if parent is None:
        parent = np.arange(int(np.prod(root_shape, dtype=np.int64))).reshape(root_shape)
    env = {fn.params[0]: parent}
    try:
        for op in fn.body:
            a = env[op.inputs[0]]
            out = _SHAPE_PRIMS[op.prim.name](a, **op.params)
            if out is None:                       # a reshape that copies
                if m.expanded or m.merged:
                    return A_COPY                 # as PyTorch: not a view at all
                m.strided, out = False, a.reshape(op.params["shape"])
            env[op.results[0]] = out
    except ValueError:       # NumPy's bound: a table past 2^63 bytes (an expand of 2^60+
        return NOT_A_VIEW    # elements) stays a copy that later writes do not reach
    return env[fn.results[0]]


def check_inplace(t: Tensor, compute=None, args: tuple = (), kwargs=None):
    """PyTorch's errors for an in-place change `compute(t, *args, **kwargs)` of a tensor that
    shares its storage: a view of a leaf that requires grad; a tensor whose elements repeat
    (an expand: "more than one element...", but for fill_/zero_, which PyTorch lets
    through, and `e[0] = v`, which writes a part that does not repeat); an operand that
    partly overlaps the tensor written ("some elements of the input tensor..."; for an
    advanced-index write any overlap). Returns the part of t written when it is not all of
    t (a NumPy index of its positions; propagate places only that part)."""
    _settle(t._storage)
    m, written = t._member, None
    if m is not None and m.multi and is_grad_enabled():
        view_refusals.check_multi_output(t, compute, args, kwargs)
    where = positions(t) if m is not None else None
    if m is not None and m.expanded and isinstance(where, np.ndarray) and \
            overlap.repeats(where):
        written = _written_part(where, compute, args)
        if written is None:
            raise user_error(RuntimeError, OVERLAP)
        if written is view_refusals.ADVANCED:
            written = view_refusals.advanced_written(where, args[0])
    sources = _sources(t, compute, args, kwargs)
    if sources:
        _check_sources(t, where, compute, args, sources)
    if m is None or m.identity or not is_grad_enabled():
        return written
    _check_leaf(_view_base(m))
    return written


def _view_base(m: Member) -> Tensor | None:
    """The tensor a view (member m, not an alias) was first taken from: PyTorch's base of
    a view of a view is the first view's base (None if it is gone)."""
    while m.parent is not None and not m.parent.identity:
        m = m.parent
    return m.base()


def _check_leaf(base: Tensor | None):
    if base is not None and base._grad_fn is None and base._requires_grad:
        raise RuntimeError(VIEW_OF_LEAF)


def write_empty_view(t: Tensor, grad: bool):
    """An in-place op on an empty view (not a member: it shares no element): check_inplace's
    leaf test (the version moves in inplace(): its Storage is its base's counter)."""
    ref = getattr(t, "_empty_view_of", None)
    base = ref() if ref is not None else None
    if base is not None and grad:
        _check_leaf(base)


def _written_part(where: np.ndarray, compute, args: tuple):
    """The index of the part of a repeating t that compute writes, if it may (else None)."""
    if getattr(compute, "fills_all", False):          # zero_, fill_: one of each position
        return overlap.distinct_core(where)
    if getattr(compute, "index_put", False):
        key = overlap.basic_key(args[0])
        if key is None:                               # index_put_: PyTorch warns, writes
            if index_put.is_traced_key(args[0]):
                return None                           # (its positions are not known)
            view_refusals.warn_expanded_index_put()
            return view_refusals.ADVANCED
        if not overlap.repeats(where[key]):
            return key
    return None


def _sources(t: Tensor, compute, args: tuple, kwargs) -> list:
    """The Tensor operands read by compute that share t's storage (fill_'s value is read as
    a number, an index's key is not checked)."""
    if compute is None or getattr(compute, "fills_all", False):
        return []
    if getattr(compute, "index_put", False):
        key, value = args
        if isinstance(key, Tensor) and key._expr.type.dtype == "bool" and \
                isinstance(value, Tensor) and value._expr.type.size == 1:
            return []                       # PyTorch's masked_fill_: the value as a number
        args = args[1:]
    st = t._storage
    return [a for a in (*args, *(kwargs or {}).values())
            if isinstance(a, Tensor) and a.__dict__.get("_storage") is st]


def _check_sources(t: Tensor, where, compute, args: tuple, sources: list):
    st = t._storage
    root_type = (st.root_expr if st.members is not None else t._expr).type
    root_shape = root_type.shape
    if where is NOT_A_VIEW or not _strided(t):
        return                             # not a view PyTorch has: a copy, no overlap
    advanced = getattr(compute, "any_overlap", False)     # (cat's out=)
    if getattr(compute, "index_put", False):
        key = overlap.basic_key(args[0])
        advanced = key is None             # index_put_: any overlap; else copy_ into t[key]
        if not advanced:
            whole = where if where is not None else \
                np.arange(root_type.size).reshape(root_shape)
            where = whole[key]
    for a in sources:
        if a is t and not advanced:
            continue                                   # the same window: PyTorch's FULL
        there = positions(a) if a._member is not None else None
        if there is NOT_A_VIEW or not _strided(a):
            continue
        lap = overlap.status(where, there, root_shape)
        if lap == overlap.PARTIAL_OVERLAP or advanced and lap == overlap.FULL:
            raise user_error(RuntimeError, overlap.PARTIAL)


def _strided(t: Tensor) -> bool:
    return t._member is None or t._member.strided


# ---- writing ------------------------------------------------------------------------------

@torch_op("CopySlices")
def _place(root: Tensor, where: np.ndarray, value: Tensor, pick=None) -> Tensor:
    """root with the elements at flat positions `where` replaced by value's (by the
    elements of value at its flat positions `pick`, when given)."""
    n = root._expr.type.size
    flat = where.reshape(-1)
    v = apply("reshape", value, shape=(value._expr.type.size,))
    if pick is not None:
        v = apply("gather", v, tensor_from_array(pick.reshape(-1)), axis=0)
    placed = apply("scatter_add", scatter_base(root._expr.type.dtype, n),
                   tensor_from_array(flat), v, axis=0)
    mask = np.zeros(n, dtype=bool)
    mask[flat] = True
    out = apply("select", tensor_from_array(mask), placed, apply("reshape", root, shape=(n,)))
    return apply("reshape", out, shape=root._expr.type.shape)


@torch_op("AsStrided")
def _take(root: Tensor, plan: tuple) -> Tensor:
    """The elements of root at a member's positions (_take_plan)."""
    index, shape, spread = plan
    flat = apply("reshape", root, shape=(root._expr.type.size,))
    out = apply("gather", flat, index, axis=0)
    if shape is not None:
        out = apply("reshape", out, shape=shape)
    return out if spread is None else apply("broadcast_in_dim", out, shape=spread[0],
                                            dims=spread[1])


def _take_plan(m: Member, where: np.ndarray) -> tuple:
    """How _take reads a member's positions, made once per member (its positions never
    change): (the flat index Tensor to gather, the shape to give the result or None,
    (shape, dims) to broadcast it to or None). An expand's repeats broadcast from one copy
    of each position: gathered, they would be the expand's size."""
    if m.take is None:
        if not overlap.repeats(where):
            m.take = (tensor_from_array(where.reshape(-1)), where.shape, None)
        else:
            core = where[overlap.distinct_core(where)]
            kept = tuple(i for i, n in enumerate(core.shape) if n > 1)   # not repeating
            shape = None if len(kept) == 1 else tuple(core.shape[i] for i in kept)
            m.take = (tensor_from_array(core.reshape(-1)), shape, (where.shape, kept))
    return m.take


def _in_root_group(m: Member | None) -> bool:
    """No detach()/.data link between this member and the root: autograd follows writes."""
    while m is not None:
        if m.identity:
            return False
        m = m.parent
    return True


def _stand_in(st) -> Tensor:
    """The root value with the root tensor's autograd identity (or none, if it is gone)."""
    s = Tensor(st.root_expr)
    root = st.root()
    if root is not None and root._expr is st.root_expr:
        s._grad_fn, s._output_nr = root._grad_fn, root._output_nr
    return s


def propagate(t: Tensor, written=None):
    """t (a member) has a new value: rewrite the root and every other live member (from the
    part `written` of t only, when check_inplace said so: a write to an expand).

    Autograd follows the write (CopySlices on the root, AsStrided on the other views) when
    grad mode is on and t is not reached through a detach()/.data alias; otherwise, as
    for PyTorch's detached aliases, only the values change."""
    st = t._storage
    _settle(st)
    if st is not t._storage or st.members is None:      # t was a copy (_settle)
        return
    where = positions(t)
    if where is NOT_A_VIEW:
        return
    if where is None and len(st.members) == 1:
        st.root_expr = t._expr         # the root, no other live member (its views died):
        return                         # as below without a stand-in (`w2 -= ...` after w2.t())
    tracked = is_grad_enabled() and _in_root_group(t._member)
    with set_grad_enabled(tracked):
        if where is None:
            root = Tensor(t._expr)
            root._grad_fn, root._output_nr = t._grad_fn, t._output_nr
        elif written is not None:
            advanced = isinstance(written, view_refusals.AdvancedWrite)
            written = written.index if advanced else written
            pick = np.arange(where.size).reshape(where.shape)[written]
            root = _place(_stand_in(st), where[written], t, pick)
            if advanced and root._grad_fn is not None:
                root._grad_fn.saved.append(view_refusals.Refused(OVERLAP))
        else:
            root = _place(_stand_in(st), where, t)
        st.root_expr = root._expr
        for m in list(st.members):     # (t too when only part of it was placed)
            if m is not t or written is not None:
                _refresh(m, root, tracked and _in_root_group(m._member))


def _refresh(m: Tensor, root: Tensor, tracked: bool):
    where = positions(m)
    if where is NOT_A_VIEW:
        return
    plan = None if where is None else _take_plan(m._member, where)
    if not tracked:
        with set_grad_enabled(False):
            m._expr = alias_expr(root._expr) if where is None else _take(root, plan)._expr
        return
    new = root if where is None else _take(root, plan)
    m._expr = new._expr
    if new._grad_fn is not None:
        if m._member is not None and m._member.multi:
            view_refusals.refuse_after_base_change(new._grad_fn, m)
        m._grad_fn, m._output_nr = new._grad_fn, new._output_nr
