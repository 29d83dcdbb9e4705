"""Sums of zero-padded pieces as one concatenate.

The VJP of slicing pads the slice's cotangent back to the full shape, so splitting a
value into pieces (an LSTM's four gates, say) gives a cotangent that is a chain of adds of
pads, each piece zero everywhere but in its own window. When the windows are disjoint
along one axis, the sum is just the pieces side by side: one concatenate (with zero
pieces in any gaps) instead of n pads and n - 1 adds. Exact but for the sign of a zero
(x + 0.0 is +0.0 for x = -0.0), the exception simplify already accepts for x + 0.
"""
from __future__ import annotations

from ir.core import Value
from ir.passes.rewrite import Context, is_value, same_results


def _leaf_windows(op, ctx: Context):
    """The windows of the leaves of the tree of adds rooted at op (through adds used only
    there), or None as soon as one leaf is not zero-padded pieces. Breadth first, so a
    long chain of other adds is rejected at its first leaf, not walked to the bottom."""
    found, todo = [], list(op.inputs)
    while todo:
        v = todo.pop(0)
        inner = ctx.def_of(v, "add")
        if inner is not None and ctx.single_use(v):
            todo += inner.inputs
            continue
        windows = _windows(v, ctx)
        if windows is None:
            return None
        found += windows
    return found


def _windows(v: Value, ctx: Context):
    """[(axis, start, piece)] when v is zero but for pieces along one axis: a zero pad of
    one piece, or a concatenate of pieces and zero constants. None otherwise."""
    op = ctx.def_of(v)
    if op is not None and op.prim.name == "pad" and not any(op.params["interior"]):
        lo, hi = op.params["lo"], op.params["hi"]
        axes = [a for a in range(v.ndim) if lo[a] or hi[a]]
        return [(axes[0], lo[axes[0]], op.inputs[0])] if len(axes) == 1 else None
    if op is not None and op.prim.name == "concatenate":
        axis, start, found = op.params["axis"], 0, []
        for piece in op.inputs:
            if not is_value(piece, ctx, 0):
                found.append((axis, start, piece))
            start += piece.shape[axis]
        return found if len(found) < len(op.inputs) else None
    return None


def _zeros(ctx: Context, like: Value, axis: int, size: int, loc) -> Value:
    shape = like.shape[:axis] + (size,) + like.shape[axis + 1:]
    zero = 0.0 if like.dtype[0] == "f" else 0
    return ctx.emit("constant", value=zero, dtype=like.dtype, shape=shape, loc=loc)


def pads_as_concatenate(op, ctx: Context):
    """add(pad(a), add(pad(b), ...)) over disjoint windows of one axis -> concatenate (a
    leaf may also be a concatenate with zero pieces: an earlier, partial such sum)."""
    windows = _leaf_windows(op, ctx)
    if not windows:
        return None
    axis = windows[0][0]
    if any(w[0] != axis for w in windows):
        return None
    windows.sort(key=lambda w: w[1])
    ends = [start + piece.shape[axis] for _, start, piece in windows]
    if any(w[1] < end for w, end in zip(windows[1:], ends)):
        return None                              # overlapping windows really add
    # NOTE: decide before emitting anything: a rule that returns None must not add ops
    parts, pos = [], 0
    for _, start, piece in windows:
        if start > pos:
            parts.append(_zeros(ctx, piece, axis, start - pos, op.loc))
        parts.append(piece)
        pos = start + piece.shape[axis]
    total = op.results[0].shape[axis]
    if pos < total:
        parts.append(_zeros(ctx, parts[-1], axis, total - pos, op.loc))
    return same_results(op, "concatenate", parts, axis=axis)
