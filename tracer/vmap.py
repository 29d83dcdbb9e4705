"""vmap: the tracer side of batching (axes, pytrees); the IR transform is ir/batching.py."""
from __future__ import annotations

import numpy as np

from ir.batching import BatchingError, batch_function
from ir.core import DTYPES
from tracer import record
from tracer.ops.operands import user_error
from tracer.pytree import tree_flatten, tree_unflatten
from tracer.staging import Staged, apply_to, fun_name, is_array_leaf, leaf_type, trace_inner
from tracer.tensor import Tensor
from tracer.tracing import traced


def _axes_per_leaf(in_axes, args: tuple) -> list:
    """One axis (or None) per leaf of args; in_axes is an int/None or a per-argument tuple."""
    if in_axes is None or isinstance(in_axes, int):
        return [in_axes] * len(tree_flatten(args)[0])
    if not isinstance(in_axes, (tuple, list)) or len(in_axes) != len(args):
        raise user_error(ValueError, "vmap in_axes must be an int, None, or a tuple with one "
                                     f"entry per positional argument ({len(args)}), got "
                                     f"{in_axes!r}")
    out = []
    for axes, arg in zip(in_axes, args):
        n = len(tree_flatten(arg)[0])
        if axes is None or isinstance(axes, int):
            out += [axes] * n
            continue
        leaves, tree = tree_flatten(axes, is_leaf=lambda a: a is None)
        if tree != tree_flatten(arg)[1]:
            raise user_error(ValueError, f"vmap in_axes {axes!r} does not match the "
                                         "argument's structure")
        out += leaves
    return out


def _standin(t) -> np.ndarray:
    """A zero-cost array of type t: only its type matters when tracing."""
    return np.broadcast_to(np.zeros((), DTYPES[t.dtype]), t.shape)


def _move(t: Tensor, src: int, dst: int) -> Tensor:
    nd = t._expr.type.ndim
    if src == dst:
        return t
    perm = [i for i in range(nd) if i != src]
    perm.insert(dst, src)
    return record.apply("transpose", t, perm=tuple(perm))


def vmap_body(f, name: str, in_axes, out_axes):
    def body(*args, **kwargs):
        leaves, tree = tree_flatten((args, kwargs))
        n_pos = len(tree_flatten(args)[0])
        axes = _axes_per_leaf(in_axes, args) + [0] * (len(leaves) - n_pos)
        size, inner, exprs, flags = None, [], [], []
        for x, axis in zip(leaves, axes):
            if not is_array_leaf(x):
                inner.append(x)
                continue
            t = leaf_type(x)
            if axis is None:
                inner.append(x)
                exprs.append(x._expr)
                flags.append(False)
                continue
            axis = _check_axis(axis, t.ndim)
            if size is not None and t.shape[axis] != size:
                raise user_error(ValueError, f"vmap got inconsistent sizes {size} and "
                                             f"{t.shape[axis]} for the mapped axes")
            size = t.shape[axis]
            inner.append(_standin(t.with_shape(t.shape[:axis] + t.shape[axis + 1:])))
            exprs.append(_move(x, axis, 0)._expr)
            flags.append(True)
        if size is None:
            raise user_error(ValueError, "vmap needs at least one input with a mapped axis "
                                         "(in_axes)")
        iargs, ikwargs = tree_unflatten(tree, inner)
        tr = trace_inner(traced(f), name, iargs, ikwargs)
        out_ax = _out_axes(out_axes, tr.out_tree)
        want = [a is not None for a in out_ax]
        try:
            bfn, _ = batch_function(tr.fn, flags + [False] * len(tr.captures), size, want)
        except BatchingError as e:
            raise user_error(BatchingError, str(e)) from None
        outs = apply_to(bfn, exprs + list(tr.captures))
        moved = [_move(o, 0, _check_axis(a, o._expr.type.ndim)) if a is not None else o
                 for o, a in zip(outs, out_ax)]
        return tree_unflatten(tr.out_tree, moved)
    return body


def _check_axis(axis: int, ndim: int) -> int:
    if not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise user_error(ValueError, f"vmap axis {axis!r} is out of range for an array of "
                                     f"rank {ndim}")
    return axis % ndim


def _out_axes(out_axes, out_tree) -> list:
    if out_axes is None or isinstance(out_axes, int):
        return [out_axes] * out_tree.num_leaves
    leaves, tree = tree_flatten(out_axes, is_leaf=lambda a: a is None)
    if tree != out_tree:
        raise user_error(ValueError, f"vmap out_axes {out_axes!r} does not match the output "
                                     f"structure {out_tree}")
    return leaves


def vmap(f, in_axes=0, out_axes=0):
    """Vectorises f over a mapped axis of its inputs (an IR transform: ir/batching.py).

    Args:
        f: the function to batch.
        in_axes: an int or None for every argument, or a tuple with one entry per positional
            argument (each an int, None, or a pytree of them matching the argument).
            Keyword arguments are mapped over axis 0.
        out_axes: where the mapped axis goes in the outputs (int, None, or a pytree).

    Returns:
        The batched function, compiled per input signature like jit.
    """
    name = fun_name(f)
    return Staged(vmap_body(f, name, in_axes, out_axes), f, f"{name}_vmap")
