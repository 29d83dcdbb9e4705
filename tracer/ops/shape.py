"""Shape ops: reshape/view, transpose/permute, expand/broadcast_to, squeeze/unsqueeze,
flatten, cat/stack, split/chunk/unbind. Each is one `reshape`, `transpose`,
`broadcast_in_dim`, `concatenate` or a few `slice`s, so gradients and fusion come free.
Every op records a new value (never returns its input), so each result gets its own node.
"""
from __future__ import annotations

import math
import numbers

from ir.primitives import ShapeError
from tracer.ops.operands import (broadcast, norm_axis, same_dtype,
                                 shape_arg, stack_tensors, to_tensor, user_error)
from tracer.ops.getitem import getitem
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["reshape", "view", "transpose", "swapaxes", "swapdims", "permute", "t", "expand",
           "broadcast_to", "squeeze", "unsqueeze", "flatten", "ravel", "unflatten", "cat",
           "concatenate", "concat", "stack", "split", "chunk", "unbind", "narrow", "select",
           "movedim", "moveaxis"]


def infer_shape(shape: tuple, size: int) -> tuple:
    """shape with one -1 filled in so that it holds size elements."""
    unknown = [i for i, d in enumerate(shape) if d == -1]
    known = math.prod(d for d in shape if d != -1)
    bad = len(unknown) > 1 or any(d < -1 for d in shape)
    if not bad and unknown and known and size % known == 0:
        shape = shape[:unknown[0]] + (size // known,) + shape[unknown[0] + 1:]
    if bad or -1 in shape or math.prod(shape) != size:
        raise user_error(ShapeError, f"shape '{list(shape)}' is invalid for input of size {size}")
    return shape


def _reshape(x, shape) -> Tensor:
    t = to_tensor(x)
    return apply("reshape", t, shape=infer_shape(shape_arg(shape), t.numel()))


def sizes_arg(name: str, positional: tuple, keyword, what: str) -> tuple:
    """`x.view(2, 3)`, `x.view((2, 3))` and PyTorch's keyword form `x.view(size=(2, 3))`."""
    if keyword is None:
        return positional
    if positional:
        raise user_error(TypeError, f"{name}() got multiple values for argument '{what}'")
    return (keyword,)


@torch_op("View")
def reshape(input, *shape_, shape=None):
    """x with a new shape of the same size; one entry may be -1."""
    return _reshape(input, sizes_arg("reshape", shape_, shape, "shape"))


@torch_op("View")
def view(input, *size_, size=None):
    """Same as reshape (gradjit values are never aliased)."""
    return _reshape(input, sizes_arg("view", size_, size, "size"))


@torch_op("View")
def flatten(input, start_dim=0, end_dim=-1):
    """Merges axes start_dim..end_dim into one; a 0-d tensor becomes shape (1,)."""
    t = to_tensor(input)
    if t.ndim == 0:
        return apply("reshape", t, shape=(1,))
    a, b = norm_axis(start_dim, t.ndim), norm_axis(end_dim, t.ndim)
    if a > b:
        raise user_error(ValueError, "flatten() has invalid args: start_dim cannot come after "
                                     "end_dim")
    shape = t.shape[:a] + (math.prod(t.shape[a:b + 1]),) + t.shape[b + 1:]
    return apply("reshape", t, shape=tuple(shape))


def ravel(input):
    return flatten(input)


@torch_op("View")
def unflatten(input, dim, sizes):
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    sizes = infer_shape(shape_arg((sizes,)), t.shape[d])
    return apply("reshape", t, shape=tuple(t.shape[:d]) + sizes + tuple(t.shape[d + 1:]))


# ---- axis order --------------------------------------------------------------------------

def _swap(t: Tensor, a: int, b: int) -> Tensor:
    perm = list(range(t.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return apply("transpose", t, perm=tuple(perm))


@torch_op("Transpose")
def transpose(input, dim0, dim1):
    """x with axes dim0 and dim1 swapped."""
    t = to_tensor(input)
    if t.ndim == 0:
        norm_axis(dim0, 0)
        norm_axis(dim1, 0)
        return apply("reshape", t, shape=())
    return _swap(t, norm_axis(dim0, t.ndim), norm_axis(dim1, t.ndim))


swapdims = transpose


def swapaxes(input, axis0, axis1):
    """transpose under NumPy's name (and PyTorch's keywords axis0, axis1)."""
    return transpose(input, axis0, axis1)


swapaxes.torch_name = "Transpose"


@torch_op("Permute")
def permute(input, *dims_, dims=None):
    """x with its axes in the order dims (a permutation, negatives allowed)."""
    dims = sizes_arg("permute", dims_, dims, "dims")
    t = to_tensor(input)
    perm = tuple(norm_axis(d, t.ndim) for d in shape_arg(dims))
    if sorted(perm) != list(range(t.ndim)):
        raise user_error(ValueError, f"permute(): dims {list(shape_arg(dims))} are not a "
                                     f"permutation of the {t.ndim} axes")
    if t.ndim == 0:
        return apply("reshape", t, shape=())
    return apply("transpose", t, perm=perm)


@torch_op("Permute")
def movedim(input, source, destination):
    t = to_tensor(input)
    src = [norm_axis(d, t.ndim) for d in _ints(source)]
    dst = [norm_axis(d, t.ndim) for d in _ints(destination)]
    if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise user_error(ValueError, "movedim: source and destination must be distinct "
                                     "axes of the same length")
    perm = [None] * t.ndim
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(a for a in range(t.ndim) if a not in src)
    perm = tuple(p if p is not None else next(rest) for p in perm)
    return apply("transpose", t, perm=perm) if t.ndim else apply("reshape", t, shape=())


moveaxis = movedim


def _ints(v):
    return (v,) if isinstance(v, numbers.Integral) else tuple(v)


@torch_op("T")
def t(input):
    """Transpose of a matrix; 0-d and 1-d tensors are returned as they are."""
    x = to_tensor(input)
    if x.ndim > 2:
        raise user_error(ValueError, f"t() expects a tensor with <= 2 dimensions, but self is "
                                     f"{x.ndim}D")
    return _swap(x, 0, 1) if x.ndim == 2 else apply("reshape", x, shape=tuple(x.shape))


@torch_op("Permute")
def full_transpose(x):
    """x.T: all axes reversed."""
    t = to_tensor(x)
    if t.ndim < 2:
        return apply("reshape", t, shape=tuple(t.shape))
    return apply("transpose", t, perm=tuple(reversed(range(t.ndim))))


@torch_op("Transpose")
def matrix_transpose(x):
    """x.mT: the last two axes swapped."""
    t = to_tensor(x)
    if t.ndim < 2:
        raise user_error(ValueError, f"tensor.mT is only supported on matrices or batches of "
                                     f"matrices. Got {t.ndim}-D tensor.")
    return _swap(t, t.ndim - 2, t.ndim - 1)


# ---- broadcasting ---------------------------------------------------------------------------

@torch_op("Expand")
def expand(input, *sizes, size=None, implicit=False):
    """x broadcast to sizes; -1 keeps an axis, new axes go in front (no copy in PyTorch)."""
    t = to_tensor(input)
    sizes = shape_arg(sizes_arg("expand", sizes, size, "size"))
    lead = len(sizes) - t.ndim
    if lead < 0:
        raise user_error(ShapeError, f"expand: the number of sizes provided ({len(sizes)}) must "
                                     f"be greater or equal to the number of dimensions ({t.ndim})")
    shape = tuple(t.shape[i - lead] if d == -1 and i >= lead else d for i, d in enumerate(sizes))
    if any(d < 0 for d in shape):
        raise user_error(ShapeError, f"expand: -1 is not allowed in a leading, new dimension "
                                     f"({list(sizes)})")
    return _broadcast_new(t, shape)


def _broadcast_new(t: Tensor, shape: tuple) -> Tensor:
    # as PyTorch: no tensor counts its elements past int64 (traced, under jit: codegen's
    # IndexRangeError, as for any shape past 2^63 bytes)
    if math.prod(shape) >= 1 << 63 and not t._expr.symbolic:
        raise user_error(RuntimeError, f"numel: integer multiplication overflow: expand to "
                                       f"{list(shape)} has {math.prod(shape)} elements")
    out = broadcast(t, shape)
    return apply("reshape", out, shape=shape) if out is t else out


@torch_op("Expand")
def broadcast_to(input, size):
    """x broadcast to shape (NumPy's rule)."""
    return _broadcast_new(to_tensor(input), shape_arg((size,)))


# ---- squeeze / unsqueeze ------------------------------------------------------------------

@torch_op("Squeeze")
def squeeze(input, dim=None, *, axis=None):
    """Drops size-1 axes (all, or those in dim; other sizes in dim are left alone)."""
    t = to_tensor(input)
    dim = dim if dim is not None else axis
    if dim is None:
        axes = range(t.ndim)
    else:
        axes = [norm_axis(d, t.ndim) for d in _ints(dim)]
    drop = {a for a in axes if a < t.ndim and t.shape[a] == 1}
    shape = tuple(d for i, d in enumerate(t.shape) if i not in drop)
    return apply("reshape", t, shape=shape)


@torch_op("Unsqueeze")
def unsqueeze(input, dim):
    """Inserts a size-1 axis at dim (in the result's numbering)."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim + 1)
    return apply("reshape", t, shape=tuple(t.shape[:d]) + (1,) + tuple(t.shape[d:]))


# ---- joining and splitting -------------------------------------------------------------------

@torch_op("Cat")
def cat(tensors, dim=0, *, axis=None):
    """Joins tensors along an existing axis (dtypes promoted)."""
    if isinstance(tensors, Tensor):
        raise user_error(TypeError, "cat() expects a sequence of tensors, got a Tensor")
    ts = same_dtype(tensors, "cat")
    # PyTorch skips legacy empty 1-d tensors next to higher-rank ones
    ranked = [v for v in ts if not (v.ndim == 1 and v.shape[0] == 0)] or ts[:1]
    first = ranked[0]
    if first.ndim == 0:
        raise user_error(ValueError, "zero-dimensional tensor cannot be concatenated")
    d = norm_axis(dim if axis is None else axis, first.ndim)
    for v in ranked[1:]:
        same = v.ndim == first.ndim and all(a == b for i, (a, b) in
                                            enumerate(zip(v.shape, first.shape)) if i != d)
        if not same:
            raise user_error(ShapeError, f"cat(): sizes of tensors must match except in "
                                         f"dimension {d}: got {list(first.shape)} and "
                                         f"{list(v.shape)}")
    return apply("concatenate", *ranked, axis=d)


concatenate = concat = cat


@torch_op("Stack")
def stack(tensors, dim=0, *, axis=None):
    """Joins equally shaped tensors along a new axis."""
    return stack_tensors(tensors, dim if axis is None else axis)


def _pieces(t: Tensor, d: int, sizes) -> tuple:
    out, lo = [], 0
    for n in sizes:
        start = tuple(lo if i == d else 0 for i in range(t.ndim))
        limit = tuple(lo + n if i == d else s for i, s in enumerate(t.shape))
        out.append(apply("slice", t, start=start, limit=limit, stride=(1,) * t.ndim))
        lo += n
    return tuple(out)


def _split(x, split_size_or_sections, dim) -> tuple:
    t = to_tensor(x)
    d = norm_axis(dim, t.ndim)
    n = t.shape[d]
    if isinstance(split_size_or_sections, numbers.Integral):
        k = int(split_size_or_sections)
        if k <= 0 and n:
            raise user_error(ValueError, f"split_size must be positive, got {k}")
        sizes = [min(k, n - lo) for lo in range(0, n, k)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise user_error(ValueError, f"split_with_sizes expects split_sizes to sum exactly "
                                         f"to {n} (input tensor's size at dimension {d}), but "
                                         f"got split_sizes={sizes}")
    return _pieces(t, d, sizes)


_split_even = torch_op("Split")(_split)
_split_sizes = torch_op("SplitWithSizes")(_split)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of size split_size (the last may be smaller), or of the listed sizes."""
    if isinstance(split_size_or_sections, numbers.Integral):
        return _split_even(tensor, split_size_or_sections, dim)
    return _split_sizes(tensor, split_size_or_sections, dim)


split.torch_name = "Split"


def split_method(self, split_size, dim=0):
    """Tensor.split: torch.split with the method's keyword name (split_size)."""
    return split(self, split_size, dim)


@torch_op("Split")
def chunk(input, chunks, dim=0):
    """At most `chunks` pieces of size ceil(n / chunks)."""
    t = to_tensor(input)
    if chunks <= 0:
        raise user_error(ValueError, f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = t.shape[norm_axis(dim, t.ndim)]
    return _split(t, max(-(-n // chunks), 1), dim)


@torch_op("Unbind")
def unbind(input, dim=0):
    """The slices along dim, each without that axis."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    shape = tuple(t.shape[:d]) + tuple(t.shape[d + 1:])
    return tuple(apply("reshape", p, shape=shape) for p in _pieces(t, d, [1] * t.shape[d]))


def narrow(input, dim: int, start, length: int):
    """input[..., start:start + length, ...] along dim: a view (SliceBackward0), as in
    PyTorch; start may be negative or a 0-d integer tensor."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    n = t.shape[d]
    start = int(start)
    if not -n <= start <= n:
        raise user_error(IndexError, f"start out of range (expected to be in range of "
                                     f"[{-n}, {n}], but got {start})")
    start = start + n if start < 0 else start
    if length < 0 or start + length > n:
        raise user_error(RuntimeError, f"start ({start}) + length ({length}) exceeds dimension "
                                       f"size ({n}).")
    return getitem(t, (slice(None),) * d + (slice(start, start + length),))


narrow.torch_name = "Slice"


def select(input, dim: int, index):
    """input[..., index, ...] along dim: a view without that axis (SelectBackward0)."""
    t = to_tensor(input)
    if t.ndim == 0:
        raise user_error(IndexError, "select() cannot be applied to a 0-dim tensor.")
    d = norm_axis(dim, t.ndim)
    i = int(index)
    if not -t.shape[d] <= i < t.shape[d]:
        raise user_error(IndexError, f"select(): index {i} out of range for tensor of size "
                                     f"{list(t.shape)} at dimension {dim}")
    return getitem(t, (slice(None),) * d + (i,))


select.torch_name = "Select"
