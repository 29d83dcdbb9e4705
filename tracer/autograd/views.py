"""Views and aliases: tensors that share one storage, as PyTorch's views do.

PyTorch's `x[0]`, `x[:, 1:]`, `x.view(...)`, `x.t()`, `x.detach()`, `x.data` share memory
with `x`: an in-place change through any of them shows in all, and they share one
version counter. gradjit's values are immutable Exprs, so sharing is modelled instead:
the tensors of a storage are its *members*, each a window on the storage's *root value*,
described by the positions of its elements in the root (computed lazily by evaluating the
view's own shape ops, slice/reshape/transpose, on an index array). Writing a member
(`propagate`) scatters its new value into the root, recorded as PyTorch's CopySlices
node, and re-derives every other live member from the new root, recorded as AsStrided;
under no_grad only the values change. A member whose ops are not pure shape ops (say an
advanced-indexing copy that was marked by mistake) is treated as a copy: it only shares
the version counter.
"""
from __future__ import annotations

import weakref

import numpy as np

from tracer import step_tape
from tracer.autograd.emitter import cut_function
from tracer.autograd.grad_mode import is_grad_enabled, set_grad_enabled
from tracer.record import apply, torch_op
from tracer.tensor import Storage, Tensor, alias_expr, tensor_from_array

# outermost ops whose result is a view of their first argument (PyTorch's view ops)
VIEW_OPS = frozenset(("Select", "Slice", "Unsqueeze", "Alias", "View", "Transpose", "Permute",
                      "T", "Squeeze", "Split", "SplitWithSizes", "Unbind", "Expand",
                      "Diagonal"))
VIEW_OF_LEAF = ("a view of a leaf Variable that requires grad is being used in an in-place "
                "operation.")
OVERLAP = ("unsupported operation: more than one element of the written-to tensor refers to a "
           "single memory location. Please clone() the tensor before performing the operation.")
NOT_A_VIEW = object()
# an expand up to this many elements is a view (its positions derived when made); a larger
# one stays a copy that later writes to its base do not reach (docs/compat.md)
EXPAND_VIEW_LIMIT = 1 << 16
_UNSET = object()
_SHAPE_PRIMS = {
    "slice": lambda a, start, limit, stride: a[tuple(map(slice, start, limit, stride))],
    "reshape": lambda a, shape: a.reshape(shape),
    "transpose": lambda a, perm: a.transpose(perm),
    "broadcast_in_dim": lambda a, shape, dims: np.broadcast_to(   # expand: repeated positions
        a.reshape([a.shape[dims.index(i)] if i in dims else 1 for i in range(len(shape))]),
        shape),
}


class Member:
    """How a tensor sits in its storage: made from `parent` (None: the root) by the ops
    between parent_expr and expr, or an identical alias of it (detach, .data)."""
    __slots__ = ("parent", "parent_expr", "expr", "identity", "base", "positions", "expanded",
                 "merged")

    def __init__(self, parent, parent_expr, expr, identity: bool, base: Tensor):
        self.parent = parent
        self.parent_expr = parent_expr
        self.expr = expr
        self.identity = identity
        self.base = weakref.ref(base)
        self.positions = _UNSET
        self.expanded = False        # an expand made it or an ancestor: elements may repeat
        self.merged = False          # a reshape merging axes of a view: checked at a write


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
    t._expr.recorded = keep              # positions are derived from its ops, keep them
    if base._member is not None:         # (a root's own ops never are: positions are
        base._expr.recorded = True       # relative to it; keeping them kept the history
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
            continue
        if name != "Expand":
            share(base, t, identity=False)
            if name == "View" and base._member is not None and \
                    not _splits_only(base._expr.type.shape, t._expr.type.shape):
                t._member.merged = t._storage.unsettled = True   # (_settle)
        elif t._expr.type.size <= EXPAND_VIEW_LIMIT:
            share(base, t, identity=False, keep=False)
            positions(t)          # now, while its ops are there: its value is not held


step_tape.VIEW_OPS, step_tape.mark_views = VIEW_OPS, mark_views   # (followed view events)


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
    it, else a copy. Checking that costs ~50 us, so it is marked when made (`merged`) and
    settled here, before any write reaches the storage: the copies leave it."""
    if not getattr(st, "unsettled", False):
        return
    st.unsettled = False
    copies = []
    for t in list(st.members):
        m = t._member
        if m is not None and m.merged:
            m.merged = False
            if not _strided(positions(t)):
                copies.append(t)
                t._storage, t._member = Storage(), None
    if copies:              # (not WeakSet.discard: it compares tensors with ==)
        st.members = weakref.WeakSet([t for t in st.members if all(t is not c for c in copies)])


def _strided(where) -> bool:
    """Whether positions in the root are affine in their indices (strides express them)."""
    if not isinstance(where, np.ndarray) or where.size <= 1:
        return True
    where = where.astype(np.int64)
    start = int(where.flat[0])
    expect = np.full(where.shape, start, dtype=np.int64)
    for k, n in enumerate(where.shape):
        if n > 1:
            step = int(where[(0,) * k + (1,) + (0,) * (where.ndim - k - 1)]) - start
            expect += step * np.arange(n).reshape((n,) + (1,) * (where.ndim - k - 1))
    return bool(np.array_equal(where, expect))


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
    if parent is NOT_A_VIEW or m.identity:
        return parent
    fn, captures = cut_function("view", [m.parent_expr], [m.expr])
    if captures or any(op.prim.name not in _SHAPE_PRIMS for op in fn.body):
        return NOT_A_VIEW
    if parent is None:
        parent = np.arange(int(np.prod(root_shape, dtype=np.int64))).reshape(root_shape)
    env = {fn.params[0]: parent}
    for op in fn.body:
        env[op.results[0]] = _SHAPE_PRIMS[op.prim.name](env[op.inputs[0]], **op.params)
    return env[fn.results[0]]


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
    leaf test, and its base's version moves (PyTorch's views share one counter)."""
    ref = getattr(t, "_empty_view_of", None)
    base = ref() if ref is not None else None
    if base is None:
        return
    if grad:
        _check_leaf(base)
    base._storage.version += 1


def check_inplace(t: Tensor):
    """PyTorch's errors for an in-place change of a view of a leaf that requires grad, and of
    a tensor whose elements share memory (an expand: its write could not be placed). Also
    refused: a write to part of an expand (`e[0] = 1`), which PyTorch allows."""
    _settle(t._storage)
    m = t._member
    if m is None:
        return
    if not m.identity and is_grad_enabled():
        _check_leaf(_view_base(m))
    if m.expanded:         # (a sort of every position: only where an expand may repeat them)
        where = positions(t)
        if isinstance(where, np.ndarray) and np.unique(where).size != where.size:
            raise RuntimeError(OVERLAP)


# ---- writing ------------------------------------------------------------------------------

@torch_op("CopySlices")
def _place(root: Tensor, where: np.ndarray, value: Tensor) -> Tensor:
    """root with the elements at flat positions `where` replaced by value's."""
    n = root._expr.type.size
    flat = where.reshape(-1)
    v = apply("reshape", value, shape=(flat.size,))
    zero = apply("constant", value=0 if root._expr.type.dtype != "bool" else False,
                 dtype=root._expr.type.dtype, shape=(n,))
    placed = apply("scatter_add", zero, tensor_from_array(flat), v, axis=0)
    mask = np.zeros(n, dtype=bool)
    mask[flat] = True
    out = apply("select", tensor_from_array(mask), placed, apply("reshape", root, shape=(n,)))
    return apply("reshape", out, shape=root._expr.type.shape)


@torch_op("AsStrided")
def _take(root: Tensor, where: np.ndarray) -> Tensor:
    """The elements of root at flat positions `where`, in where's shape."""
    flat = apply("reshape", root, shape=(root._expr.type.size,))
    out = apply("gather", flat, tensor_from_array(where.reshape(-1)), axis=0)
    return apply("reshape", out, shape=where.shape)


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


def propagate(t: Tensor):
    """t (a member) has a new value: rewrite the root and every other live member.

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
        else:
            root = _place(_stand_in(st), where, t)
        st.root_expr = root._expr
        for m in list(st.members):
            if m is not t:
                _refresh(m, root, tracked and _in_root_group(m._member))


def _refresh(m: Tensor, root: Tensor, tracked: bool):
    where = positions(m)
    if where is NOT_A_VIEW:
        return
    if not tracked:
        with set_grad_enabled(False):
            m._expr = alias_expr(root._expr) if where is None else _take(root, where)._expr
        return
    new = root if where is None else _take(root, where)
    m._expr = new._expr
    if new._grad_fn is not None:
        m._grad_fn, m._output_nr = new._grad_fn, new._output_nr
