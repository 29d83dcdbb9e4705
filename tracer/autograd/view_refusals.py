"""PyTorch's refusals and warnings for in-place writes through views that autograd
follows (used by tracer/autograd/views.py): outputs of multi-output view ops (split, chunk,
unbind) and advanced-index writes to an expand."""
from __future__ import annotations

import os
import re
import sys
import warnings

import numpy as np

from tracer.autograd import index_put, overlap
from tracer.ops.operands import user_error
from tracer.tensor import Tensor

MULTI_OUTPUT_OPS = frozenset(("Split", "SplitWithSizes", "Unbind"))
MULTI_OUTPUT = ("Output {nr} of {name} is a view and {what}. This view is the output of a "
                "function that returns multiple views. Such functions do not allow the output "
                "views to be modified inplace. You should replace the inplace operation by an "
                "out-of-place one.")
MULTI_OUTPUT_NO_GRAD = ("A view was created in no_grad mode and is being modified inplace with "
                        "grad mode enabled." + MULTI_OUTPUT.split(".", 1)[1])


def check_multi_output(t: Tensor, compute, args: tuple, kwargs):
    """PyTorch refuses an in-place change autograd would follow of an output of split /
    chunk / unbind or a view of one (x[key] = v writes the view x[key])."""
    if t.requires_grad:
        name = _setitem_view_name(args[0]) if getattr(compute, "index_put", False) else None
        raise user_error(RuntimeError, multi_output_error(t, "is being modified inplace", name))
    if any(isinstance(a, Tensor) and a.requires_grad for a in (*args, *(kwargs or {}).values())):
        raise user_error(RuntimeError, MULTI_OUTPUT_NO_GRAD)


def _setitem_view_name(key) -> str | None:
    """The op of the view PyTorch takes to write x[key] (None: x itself, or an index_put_)."""
    if overlap.basic_key(key) is None:
        return None
    name = None
    for e in key if isinstance(key, tuple) else (key,):
        if e is None:
            name = "Unsqueeze"
        elif isinstance(e, slice) and e != slice(None):
            name = "Slice"
        elif isinstance(e, (int, np.integer)):
            name = "Select"
    return name


def multi_output_error(t: Tensor, what: str, name: str | None = None) -> str:
    """PyTorch's text for an in-place change of (or after) a view of a multi-output op."""
    nr = 0 if name is not None else t._output_nr
    if name is None:
        fn = t._grad_fn
        name = re.sub(r"Backward\d*$", "", fn.name()) if fn is not None else "?"
    return MULTI_OUTPUT.format(nr=nr, name=name, what=what)


ADVANCED = object()
EXPANDED_INDEX_PUT = ("Use of index_put_ on expanded tensors is deprecated. Please clone() the "
                      "tensor before performing this operation. This also applies to advanced "
                      "indexing e.g. tensor[indices] = tensor")
_OWN_DIRS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), d) + os.sep for d in ("tracer", "gradjit", "runtime"))


def warn_expanded_index_put():
    warnings.warn(EXPANDED_INDEX_PUT, UserWarning, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """warnings.warn's stacklevel of the first caller outside gradjit (the user's line)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_OWN_DIRS):
        frame, level = frame.f_back, level + 1
    return level


def advanced_written(where: np.ndarray, key):
    """The elements of an expand that an advanced-index write reaches, one per position of
    the base (the last written of those sharing it, as PyTorch's serial loop leaves it)."""
    flat = np.arange(where.size).reshape(where.shape)[index_put.concrete_key(key)].reshape(-1)
    shared = where.reshape(-1)[flat]
    last = len(shared) - 1 - np.unique(shared[::-1], return_index=True)[1]
    return AdvancedWrite(np.unravel_index(flat[last], where.shape))


class AdvancedWrite:
    """The part of an expand an index_put_ writes. PyTorch writes it, but its backward
    refuses (its gradient write into the expanded gradient overlaps itself)."""
    def __init__(self, index: tuple):
        self.index = index


CHANGED = "its base or another view of its base has been modified inplace"


def refuse_after_base_change(node, m: Tensor):
    """node (m's new AsStrided) refuses a backward, and reading it as m.grad_fn raises: m is
    a multi-output view whose base changed in place (an op on m with grad mode on records,
    where PyTorch raises already: docs/compat.md)."""
    message = multi_output_error(m, CHANGED)
    node.saved.append(Refused(message))
    node.invalid_view = message            # m.grad_fn / m.is_leaf raise it, as PyTorch's


class Refused:
    """A saved-tensor entry whose check always fails, on a node PyTorch refuses to
    differentiate: after a write through the base of a multi-output view (PyTorch raises
    when the view's grad_fn is next read; gradjit when a backward reaches it), or an
    index_put_ into an expand."""
    storage = None

    def __init__(self, message: str):
        self.message = message

    def check(self):
        raise RuntimeError(self.message)
