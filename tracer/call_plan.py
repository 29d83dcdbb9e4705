"""The hot path of a cached jit call: a prepared plan that skips the signature machinery.

A call whose positional arguments are all NumPy arrays, NumPy scalars, realised Tensors
(Parameters too) or, for a plain jit, Python scalars first tries a `CallPlan`
(tracer/staging.py, Staged.__call__), keyed by each argument's type, dtype and shape, and a
Python scalar's exact value, which the trace made a constant (`fast_key`): it skips the
signature, the pytree walk and the re-validation, and calls the Executable directly.

The tiny call (issue 13: a few microseconds of Python around a kernel that runs for
nanoseconds) goes further when every argument is a C-contiguous array, a NumPy scalar, a
realised Tensor that records no autograd (not requiring grad, or under no_grad) or a
Python scalar, every capture is realised, and the kernel is small (runtime/fastcall.py):
`call_fast` checks each argument against the plan's guards in one pass (type, dtype,
shape, strides; a NumPy scalar by its type alone; a Python scalar by type and value), so
Staged can try the plan it used last without computing a key, and calls the kernel's
builtin trampoline with the arguments as they are (a scalar is read where it lives) and
fresh outputs, which the trampoline leaves read-only, rebuilt into the result's tree
(tuples, lists, dicts keyed by strings or ints). Outputs are new arrays on every call:
nothing handed to a user is written again. Before (2-core Zen 3, CPU time per call):
`f(x, 2.0)` with a Python float 37 -> 1.4 us, a dict result 6.9 -> 2.1 us, a Parameter
under no_grad 38 -> ~2 us.
"""
from __future__ import annotations

import functools

import numpy as np

from ir import Value
from runtime.fastcall import INLINE, READ_ONLY
from tracer import call_fast
from tracer.call_fast import STATIC, tree_expression
from tracer.autograd.grad_mode import is_grad_enabled
from tracer.expr import Expr
from tracer.pytree import TreeDef, tree_unflatten
from tracer.tensor import Storage, Tensor

_new = object.__new__
_empty = np.empty
_SCALAR_TYPES = frozenset({np.float32, np.float64, np.int32, np.int64, np.bool_})
# Python scalars: static values of the traced program, never passed to the kernel
_STATIC_TYPES = frozenset({float, int, bool})


def fast_key(args: tuple, statics: bool = False) -> tuple | None:
    """A cheap key of a call's arguments (type, dtype, shape each) when all of them are
    arrays, NumPy scalars or Tensors, else None. Equal keys imply equal signature keys.

    statics: Python floats, ints and bools are keyed by their exact value too (a plain jit
    traces them as static values, so each value is its own signature; a float by its bits:
    -0.0 is not 0.0). Not for a function whose `prepare` hook turns some of them into
    arrays (grad's differentiated floats)."""
    key = []
    for a in args:
        t = type(a)
        if t is np.ndarray:
            key.append((a.dtype, a.shape))
        elif t in _SCALAR_TYPES:
            key.append(t)
        elif t is Tensor:
            key.append(a._expr.value.type)
        elif isinstance(a, Tensor):            # a Parameter: a plan of its own type
            key.append((t, a._expr.value.type))
        elif statics and t in _STATIC_TYPES:
            key.append((t, a.hex() if t is float else a))
        else:
            return None
    return tuple(key)


def unflattener(tree: TreeDef):
    """tree_unflatten(tree, .) specialised for results that are (nested) tuples and lists:
    one generated expression, `lambda l: (l[0], (l[1], ), )` for value_and_grad's (value,
    (grad,)) (the general walk costs ~1 us per call there)."""
    if tree.kind == "leaf":
        return lambda leaves: leaves[0]
    if tree.kind == "tuple" and all(c.kind == "leaf" for c in tree.children):
        return tuple
    text = tree_expression(tree, [f"l[{i}]" for i in range(tree.num_leaves)])
    if text is None:
        return functools.partial(tree_unflatten, tree)
    return eval("lambda l: " + text, {})    # noqa: S307 (text made from the tree's kinds)


def _result(out, value: Value) -> Tensor:
    """A Tensor over a fresh read-only result array (Tensor(Expr(...)) without its checks)."""
    t = _new(Tensor)
    t._expr = Expr(value, data=out)
    t._storage = Storage()
    return t


class CallPlan:
    """A compiled signature called with no signature machinery: arrays in, Tensors out.

    The result Tensors of every call share one Value per result (as detached aliases
    share theirs): a realised Expr is identified by itself, never by its Value."""
    __slots__ = ("exe", "captures", "owned", "values", "rebuild", "trusted", "fast",
                 "call_fast")

    def __init__(self, entry, args: tuple = ()):
        """entry: a staging.Entry whose executable exists and whose captures are concrete;
        args: the call that made the plan (its arguments' layouts decide call_fast)."""
        self.exe = entry.exe
        self.captures = [c.data for c in entry.captures]
        types = entry.fn.param_types[len(entry.fn.params) - len(self.captures):]
        # captured Tensors (a model's parameters) are read on every call: (index, tensor, type)
        self.owned = [(i, t, ty) for i, (t, ty) in enumerate(zip(entry.owners, types))
                      if t is not None]
        # constant captured arrays never change: checked once here instead of on every call
        self.trusted = all(type(a) is np.ndarray and a.flags.c_contiguous and a.shape == t.shape
                           and a.dtype == t.np_dtype
                           for a, t, o in zip(self.captures, types, entry.owners) if o is None)
        self.values = [Value(t) for t in entry.fn.result_types]
        self.rebuild = unflattener(entry.out_tree)
        self.fast = None
        self.call_fast = _no_fast_call     # args -> results, or None: the general path
        if self.trusted:
            self._prepare_fast(args, entry.fn.param_types, entry.out_tree)

    def _prepare_fast(self, args: tuple, types: list, tree: TreeDef):
        """Sets up call_fast when the arguments are contiguous arrays, NumPy scalars and
        Tensors of exactly the parameter types and the executable has a builtin trampoline."""
        guards, modes = [], []
        dynamic = [a for a in args if type(a) not in _STATIC_TYPES]
        if len(dynamic) + len(self.captures) != len(types):
            return
        types = iter(types)
        for a in args:
            t = type(a)
            if t in _STATIC_TYPES:
                guards.append((t, STATIC, a, None))
                continue
            ty = next(types)
            if t is np.ndarray and a.dtype is ty.np_dtype and a.shape == ty.shape \
                    and a.flags.c_contiguous:
                guards.append((t, a.dtype, a.shape, _c_strides(a.itemsize, a.shape)))
                modes.append(0)
            elif t in _SCALAR_TYPES and np.dtype(t) is ty.np_dtype:
                guards.append((t, None, None, None))
                modes.append(INLINE)
            elif isinstance(a, Tensor) and a._expr.type == ty:
                # a Parameter too (its exact type is guarded): read when grad is not recorded
                guards.append((t, ty, None, _c_strides(ty.np_dtype.itemsize, ty.shape)))
                modes.append(0)
            else:
                return
        modes += [0] * len(self.captures) + [READ_ONLY] * len(self.values)
        fast = self.exe.fast_caller(bytes(modes))
        if fast is not None:
            owned = {i: (t, ty, _c_strides(ty.np_dtype.itemsize, ty.shape))
                     for i, t, ty in self.owned}
            made = call_fast.make(tuple(guards), self.captures, owned, self.exe.output_specs(),
                                  self.values, tree, fast, self.exe.shared_workspace)
            if made is not None:
                self.fast, self.call_fast = fast, made

    def __call__(self, args: tuple):
        """The results, or None when an argument is a Tensor that is not computed yet."""
        if self.fast is not None:
            out = self.call_fast(args)
            if out is not None:
                return out
        arrays, checked = [], self.trusted
        for a in args:
            t = type(a)
            if t is np.ndarray:
                # dtype and shape are the fast key's: only the layout is left to check
                checked = checked and a.flags.c_contiguous
                arrays.append(a)
            elif t in _SCALAR_TYPES:
                arrays.append(np.asarray(a))
            elif t in _STATIC_TYPES:
                continue                  # the key holds its value: traced into the program
            else:
                data = a._expr.data
                if data is None or (a.requires_grad and is_grad_enabled()):
                    return None                   # the slow path records autograd
                arrays.append(data)
                checked = False
        if self.owned:
            caps = list(self.captures)
            for i, t, ty in self.owned:
                e = t._expr
                data = e.data
                if data is None or e.type != ty or (t.requires_grad and is_grad_enabled()):
                    return None                   # the slow path computes, retraces, records
                checked = checked and data.flags.c_contiguous
                caps[i] = data
            arrays += caps
        else:
            arrays += self.captures
        outs = self.exe.run(arrays) if checked else self.exe(*arrays)
        for out in outs:
            out.setflags(write=False)
        return self.rebuild([_result(o, v) for o, v in zip(outs, self.values)])


def _no_fast_call(args: tuple):
    return None


def _c_strides(itemsize: int, shape: tuple) -> tuple:
    """The strides of a C-contiguous array of shape (NumPy may give a contiguous array
    other strides on axes of length 1; those take the general path)."""
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))
