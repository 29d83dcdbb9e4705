"""PyTorch's memory-overlap rules, read off a view's position table (tracer/autograd/views.py).

A member's positions are an int64 ndarray of flat indices into its storage's root, derived
by NumPy's own view ops (slice, transpose, reshape without copy, broadcast_to) from an
arange of the root: while every step was a NumPy view, the table's strides are the strides
PyTorch gives the same view (in elements, times 8 bytes), its first entry the storage
offset, and an expand's repeated positions are zero strides (no memory: an expand of 1e9
elements from 1e3 is a 1e3 table). So PyTorch's checks need no sort of the positions:

  - internal overlap (`assert_no_internal_overlap`: "more than one element of the
    written-to tensor refers to a single memory location"): a zero stride on an axis
    longer than one;
  - partial overlap of an input with the written tensor (`get_overlap_status`): both dense
    and non-overlapping, their [begin, end) ranges meet, and they are not the same window
    (same begin, end and strides). Anything not dense is "too hard" for PyTorch: no error.
"""
from __future__ import annotations

import numpy as np

OVERLAP = ("unsupported operation: more than one element of the written-to tensor refers to a "
           "single memory location. Please clone() the tensor before performing the operation.")
PARTIAL = ("unsupported operation: some elements of the input tensor and the written-to tensor "
           "refer to a single memory location. Please clone() the tensor before performing the "
           "operation.")
NO, FULL, PARTIAL_OVERLAP, TOO_HARD = "no", "full", "partial", "too hard"


def repeats(where: np.ndarray) -> bool:
    """Some position appears twice (the table is a NumPy view: repeats are zero strides)."""
    return any(s == 0 and n > 1 for s, n in zip(where.strides, where.shape))


def distinct_core(where: np.ndarray) -> tuple:
    """The index that keeps one entry along every repeating (zero-stride) axis."""
    return tuple(slice(0, 1) if s == 0 and n > 1 else slice(None)
                 for s, n in zip(where.strides, where.shape))


def _window(where: np.ndarray | None, root_shape: tuple):
    """(begin, numel, strides) of a dense, non-overlapping window; None: not dense."""
    if where is None:                               # the root itself: C-contiguous
        n = int(np.prod(root_shape, dtype=np.int64))
        strides, acc = [], 1
        for d in reversed(root_shape):
            strides.append(acc)
            acc *= d
        return 0, n, tuple(reversed(strides))
    strides = tuple(s // where.itemsize for s in where.strides)
    expect = 1
    for s, d in sorted((s, d) for s, d in zip(strides, where.shape) if d != 1):
        if s != expect:
            return None
        expect *= d
    return int(where.flat[0]), where.size, strides


def status(a, b, root_shape: tuple) -> str:
    """PyTorch's get_overlap_status of two windows on one root (positions, None: the root)."""
    if a is not None and a.size == 0 or b is not None and b.size == 0:
        return NO
    wa, wb = _window(a, root_shape), _window(b, root_shape)
    if wa is None or wb is None:
        return TOO_HARD
    (a0, na, sa), (b0, nb, sb) = wa, wb
    if a0 == b0 and na == nb:
        return FULL if sa == sb else PARTIAL_OVERLAP
    return PARTIAL_OVERLAP if a0 < b0 + nb and b0 < a0 + na else NO


def basic_key(key):
    """key as a NumPy index when it is basic indexing (ints, slices, None, ...): PyTorch
    writes it through a view (copy_); None for an advanced key (index_put_)."""
    entries = key if isinstance(key, tuple) else (key,)
    for k in entries:
        if not (k is None or k is Ellipsis or isinstance(k, slice) or
                isinstance(k, (int, np.integer)) and not isinstance(k, bool)):
            return None
    return entries
