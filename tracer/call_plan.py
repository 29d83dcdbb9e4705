"""The hot path of a cached jit call: a prepared plan that skips the signature machinery.

A call whose positional arguments are all NumPy arrays, NumPy scalars or realised Tensors
first tries a `CallPlan` (tracer/staging.py, Staged.__call__), keyed by each argument's
type, dtype and shape (`fast_key`): it skips the signature, the pytree walk and the
re-validation, and calls the Executable directly.
"""
from __future__ import annotations

import functools

import numpy as np

from ir import Value
from tracer.expr import Expr
from tracer.pytree import TreeDef, tree_unflatten
from tracer.tensor import Storage, Tensor

_new = object.__new__
_SCALAR_TYPES = frozenset({np.float32, np.float64, np.int32, np.int64, np.bool_})


def fast_key(args: tuple) -> tuple | None:
    """A cheap key of a call's arguments (type, dtype, shape each) when all of them are
    arrays, NumPy scalars or Tensors, else None. Equal keys imply equal signature keys."""
    key = []
    for a in args:
        t = type(a)
        if t is np.ndarray:
            key.append((a.dtype, a.shape))
        elif t in _SCALAR_TYPES:
            key.append(t)
        elif isinstance(a, Tensor):
            key.append(a._expr.value.type)
        else:
            return None
    return tuple(key)


def unflattener(tree: TreeDef):
    """tree_unflatten(tree, .) specialised for the two common shapes of results."""
    if tree.kind == "leaf":
        return lambda leaves: leaves[0]
    if tree.kind == "tuple" and all(c.kind == "leaf" for c in tree.children):
        return tuple
    return functools.partial(tree_unflatten, tree)


class CallPlan:
    """A compiled signature called with no signature machinery: arrays in, Tensors out.

    The result Tensors of every call share one Value per result (as detached aliases
    share theirs): a realised Expr is identified by itself, never by its Value."""
    __slots__ = ("exe", "captures", "values", "rebuild", "trusted")

    def __init__(self, entry):
        """entry: a staging.Entry whose executable exists and whose captures are concrete."""
        self.exe = entry.exe
        self.captures = [c.data for c in entry.captures]
        types = entry.fn.param_types[len(entry.fn.params) - len(self.captures):]
        # captured arrays never change: checked once here instead of on every call
        self.trusted = all(type(a) is np.ndarray and a.flags.c_contiguous and a.shape == t.shape
                           and a.dtype == t.np_dtype for a, t in zip(self.captures, types))
        self.values = [Value(t) for t in entry.fn.result_types]
        self.rebuild = unflattener(entry.out_tree)

    def __call__(self, args: tuple):
        """The results, or None when an argument is a Tensor that is not computed yet."""
        arrays, checked = [], self.trusted
        for a in args:
            t = type(a)
            if t is np.ndarray:
                # dtype and shape are the fast key's: only the layout is left to check
                checked = checked and a.flags.c_contiguous
                arrays.append(a)
            elif t in _SCALAR_TYPES:
                arrays.append(np.asarray(a))
            else:
                data = a._expr.data
                if data is None or a.requires_grad:       # the slow path records autograd
                    return None
                arrays.append(data)
                checked = False
        arrays += self.captures
        outs = self.exe.run(arrays) if checked else self.exe(*arrays)
        tensors = []
        for out, v in zip(outs, self.values):
            out.setflags(write=False)
            t = _new(Tensor)                    # Tensor(Expr(...)) without its checks
            t._expr = Expr(v, data=out)
            t._storage = Storage()
            tensors.append(t)
        return self.rebuild(tensors)
