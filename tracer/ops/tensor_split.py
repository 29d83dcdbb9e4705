"""torch.tensor_split / Tensor.tensor_split: NumPy's array_split as PyTorch spells it.

Each piece is `narrow`'s view (SliceBackward0), as in PyTorch: unlike split/chunk's pieces
(one multi-output node), an in-place write to one of them is allowed and reaches the base.
"""
from __future__ import annotations

import numbers

import numpy as np

from tracer.ops.operands import norm_axis, to_tensor, user_error
from tracer.ops.shape import narrow
from tracer.tensor import Tensor

__all__ = ["tensor_split"]


def _bounds(sections, n: int, dim) -> list:
    """The split points along an axis of length n: from a number of sections or a list of
    indices (negative ones count from the end, all clipped to [0, n] as slices are)."""
    if isinstance(sections, Tensor):
        if sections.ndim > 1:
            raise user_error(RuntimeError, "tensor_split expected tensor_indices_or_sections to "
                             "be a zero-dimensional or one-dimensional tensor, but got a tensor "
                             f"with {sections.ndim} dims")
        dt = sections._expr.type.dtype
        if dt != "i64":
            name = {"f32": "Float", "f64": "Double", "i32": "Int", "bool": "Bool"}[dt]
            raise user_error(RuntimeError, "tensor_split expected tensor_indices_or_sections to "
                             f"have dtype of long, but got {name}")
        values = np.asarray(sections._realize()).tolist()
        sections = values if sections.ndim else int(values)
    if isinstance(sections, numbers.Integral) and not isinstance(sections, bool):
        k = int(sections)
        if k <= 0:
            raise user_error(RuntimeError, f"number of sections must be larger than 0, got {k}")
        size, extra = divmod(n, k)       # the first n % k pieces get one element more
        return [i * size + min(i, extra) for i in range(1, k)]
    if not isinstance(sections, (list, tuple)) or \
            not all(isinstance(i, numbers.Integral) for i in sections):
        raise user_error(TypeError, "tensor_split() received an invalid combination of "
                         f"arguments - got (Tensor, {type(sections).__name__}), but expected "
                         "one of: (Tensor input, tuple of ints indices, int dim = 0), (Tensor "
                         "input, Tensor tensor_indices_or_sections, int dim = 0), (Tensor input, "
                         "int sections, int dim = 0)")
    return [min(max(int(i) + n if i < 0 else int(i), 0), n) for i in sections]


def tensor_split(input, indices_or_sections=None, dim=0, *, sections=None, indices=None,
                 tensor_indices_or_sections=None):
    """Pieces of input along dim: `k` sections (the first n % k one element longer) or the
    pieces between the given indices; every piece is a view of input."""
    t = to_tensor(input)
    if t.ndim == 0:
        raise user_error(RuntimeError, "tensor_split expected at least a 1-dimensional tensor, "
                         "but got a tensor with 0 dims")
    given = [s for s in (indices_or_sections, sections, indices, tensor_indices_or_sections)
             if s is not None]
    if len(given) != 1:
        raise user_error(TypeError, "tensor_split() takes one of sections, indices or "
                                    "tensor_indices_or_sections")
    d = norm_axis(dim, t.ndim)
    n = t.shape[d]
    cuts = [0] + _bounds(given[0], n, dim) + [n]
    return tuple(narrow(t, d, lo, max(hi - lo, 0)) for lo, hi in zip(cuts, cuts[1:]))
