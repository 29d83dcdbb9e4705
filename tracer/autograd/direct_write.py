"""`x[key] = number` into a tensor with no autograd in sight, written with NumPy.

char_rnn_classification's `lineToTensor` fills a fresh `torch.zeros` one element at a time
(`tensor[li][0][k] = 1`). The general path (inplace.py's setitem) records each write as
ops: the index write on the view, a CopySlices scatter into the root and a gather for
every live view (~17 IR ops), so the tensor the model then reads is a growing pending
graph: ~0.3 ms a write, ~1.5 ms a name, where PyTorch takes microseconds.

When no tensor of the storage has autograd history or requires grad, the value written is
a Python number and the key is basic (ints, slices with a positive step, None, Ellipsis),
nothing would be recorded: the new value is the old root array copied (Exprs and their
arrays never change: a pending expression or a saved tensor that read the old value still
sees it), the number written into the copy at the written view's positions in the root
(views.positions: the same positions the general path scatters to), and every live view
reads its new value from the copy. The version counter moves once, as PyTorch's.

Anything else (a traced or pending value, NumPy-shared memory, an expand, an unsettled
reshape, a number whose conversion the general path makes differently, a key NumPy would
read otherwise or refuse) takes the general path, which gives the same values and raises
the user's errors; `GRADJIT_LOG=1` says why a write whose value and key qualified was
refused. ENABLED = False turns it off (tests compare the two paths).
"""
from __future__ import annotations

import math

import numpy as np

from runtime import log, logging_enabled
from tracer.autograd import views
from tracer.captures import active as captures_active
from tracer.expr import data_expr
from tracer.record import _state as record_state
from tracer.storage import Storage
from tracer.tensor import Tensor, alias_expr

ENABLED = True
# writes taken here, and writes whose key and value qualified but that were refused
STATS = {"written": 0, "refused": 0}

_FLOATS = ("f32", "f64")
_INT_RANGE = {"i32": (-2 ** 31, 2 ** 31 - 1), "i64": (-2 ** 63, 2 ** 63 - 1)}
_F32_MAX = float(np.finfo(np.float32).max)
_NUMPY = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
          "bool": np.bool_}


def write(t: Tensor, key, value) -> bool:
    """Writes t[key] = value directly when nothing would be recorded; whether it did."""
    kind = type(value)
    if not ENABLED or (kind is not float and kind is not int and kind is not bool) or \
            type(key) is Tensor or type(t) is not Tensor or not _basic_key(key):
        return False                  # (a mask put, `grad_h[h < 0] = 0`: two tests)
    reason = _refusal(t, value)
    if reason is None:
        reason = _write(t, key, value)
    if reason is None:
        STATS["written"] += 1
        return True
    STATS["refused"] += 1
    if logging_enabled():
        log.info(f"direct write refused ({reason}): the general path records x[key] = value")
    return False


def _basic_key(key) -> bool:
    """Ints, slices of ints with a positive step (PyTorch refuses others; NumPy reads a
    negative step), None and Ellipsis: NumPy's basic indexing reads them as PyTorch's."""
    for k in key if type(key) is tuple else (key,):
        kind = type(k)
        if kind is int or k is None or k is Ellipsis:
            continue
        if kind is not slice:
            return False                      # (a bool is an index NumPy reads otherwise)
        for part in (k.start, k.stop):
            if part is not None and type(part) is not int:
                return False
        if k.step is not None and (type(k.step) is not int or k.step <= 0):
            return False
    return True


def _refusal(t: Tensor, value) -> str | None:
    """Why the write must take the general path (None: it need not)."""
    if t._grad_fn is not None or t._requires_grad:
        return "the tensor has autograd history or requires grad"
    if record_state.depth or captures_active():
        return "inside a recorded op or a functional trace"
    dtype = t._expr.type.dtype
    if not _converts_alike(value, dtype):
        return f"{type(value).__name__} into {dtype}"
    if not t._expr.type.size:
        return "no elements (an empty view's checks are the general path's)"
    st = t.__dict__.get("_storage")
    if st is not None and (type(st) is not Storage or st.host is not None or st.unsettled):
        return "NumPy-shared memory or an unsettled reshape"
    if st is None or st.members is None:
        if t._expr.data is None:
            return "the value is pending or traced"
        return None
    if st.root_expr.data is None:
        return "the storage's value is pending"
    for m in list(st.members):
        if m._grad_fn is not None or m._requires_grad:
            return "another tensor of the storage has autograd history or requires grad"
        member = m._member
        if member is not None and (member.expanded or member.merged):
            return "an expand or a merging reshape shares the storage"
    return None


def _converts_alike(value, dtype: str) -> bool:
    """Whether NumPy's conversion of value to dtype is the general path's (a float goes
    straight to a float dtype: operands.written_as; an int is a constant of its own dtype,
    converted): ints only where they convert exactly."""
    if type(value) is bool:
        return True
    if type(value) is int:
        if dtype in _FLOATS:
            return -2 ** 53 <= value <= 2 ** 53      # exact in a double: one rounding
        if dtype == "bool":
            return True
        low, high = _INT_RANGE[dtype]
        return low <= value <= high
    if dtype == "f32":                # a float: one rounding either way (not past f32's range:
        return abs(value) <= _F32_MAX or abs(value) == float("inf")   # NumPy would warn)
    if dtype == "f64":
        return True
    return False                                        # a float into an int or a bool


def _write(t: Tensor, key, value) -> str | None:
    """The write itself; a reason (nothing changed) if NumPy refuses the key."""
    st = t.__dict__.get("_storage")
    number = _NUMPY[t._expr.type.dtype](value)
    if st is None or st.members is None:
        new = np.array(t._expr.data)                    # a copy: the old array stays
        try:
            new[key] = number
        except (IndexError, ValueError, TypeError, OverflowError):
            return "NumPy refused the key"
        t._expr = _frozen(new)
        t._storage.version += 1
        return None
    live = list(st.members)
    shape = st.root_expr.type.shape
    where = [_positions(m, shape) for m in live]
    if any(w is views.NOT_A_VIEW or w is views.A_COPY for w in where):
        return "a tensor of the storage is not a view"
    mine = [w for m, w in zip(live, where) if m is t]
    if not mine:
        return "the tensor is not a member of its storage"
    mine = mine[0]
    root = np.array(st.root_expr.data)
    flat = root.reshape(-1)
    try:
        if mine is None:
            root[key] = number
        else:
            flat[mine[key]] = number
    except (IndexError, ValueError, TypeError, OverflowError):
        return "NumPy refused the key"
    root_expr = st.root_expr = _frozen(root)
    owner = st.root()
    for m, w in zip(live, where):
        if w is not None:
            m._expr = _frozen(flat[w])
        else:                         # the root tensor, or an alias of it (detach, .data)
            m._expr = root_expr if m is owner else alias_expr(root_expr)
    st.version += 1
    return None


def _positions(t: Tensor, root_shape):
    """views.positions(t), derived from the Exprs between a view and its parent when they
    are one chain of shape ops (~10 us; the general derivation cuts an IR function out of
    the graph first, ~50 us: two of them a write in `tensor[li][0][k] = 1`)."""
    m = t._member
    if m is None:
        return None
    return _member_positions(m, root_shape)


def _member_positions(m, root_shape):
    # (views.py's own table, unset mark and derivation: the same positions, shared)
    if m.positions is not views._UNSET:
        return m.positions
    parent = None if m.parent is None else _member_positions(m.parent, root_shape)
    chain = None if m.identity or parent is views.NOT_A_VIEW or parent is views.A_COPY \
        else _shape_chain(m.parent_expr, m.expr)
    if chain is None:                               # the general derivation decides
        return views._positions(m, root_shape)
    a = np.arange(math.prod(root_shape)).reshape(root_shape) \
        if parent is None else parent
    strided = m.parent is None or m.parent.strided
    for op in chain:
        out = views._SHAPE_PRIMS[op.prim.name](a, **op.params)
        if out is None:                             # a reshape that copies (as _derive)
            strided, out = False, a.reshape(op.params["shape"])
        a = out
    m.strided, m.positions = strided, a
    return a


def _shape_chain(parent_expr, expr) -> list | None:
    """The ops from parent_expr to expr when each is a shape op of one operand (None:
    anything else, the general derivation's case)."""
    ops = []
    e = expr
    while e is not parent_expr:
        op = e.op
        if op is None or len(e.args) != 1 or op.prim.name not in views._SHAPE_PRIMS or \
                len(ops) > 16:
            return None
        ops.append(op)
        e = e.args[0]
    return ops[::-1]


def _frozen(array):
    array = np.asarray(array)            # (a 0-d view's gather is a NumPy scalar)
    array.flags.writeable = False        # (data arrays are never written: see above)
    return data_expr(array)
