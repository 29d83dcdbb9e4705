"""nn.functional's indexing and resampling functions: embedding, one_hot, pad (constant,
reflect, replicate, circular), dropout variants and interpolate (nearest, linear, bilinear).

Resampling along an axis is a product with a small (out, in) matrix built in NumPy (linear
interpolation, adaptive averaging), or a gather of source indices (nearest, reflect,
replicate): both differentiate through the existing dot_general / gather rules."""
from __future__ import annotations

import math

import numpy as np

import tracer.ops as ops
from tracer.autograd.grad_mode import no_grad
from tracer.creation import arange, rand, tensor
from tracer.nn.functional_act import as_float
from tracer.ops.operands import dtype_of, to_tensor, user_error
from tracer.record import apply, torch_op

__all__ = ["embedding", "one_hot", "pad", "dropout1d", "dropout2d", "alpha_dropout",
           "interpolate", "upsample"]


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """The rows of weight at the indices of input; the padding_idx row gets no gradient."""
    idx = to_tensor(input)
    if dtype_of(idx) not in ("i32", "i64"):
        raise user_error(RuntimeError, "Expected tensor for argument #1 'indices' to have one "
                         "of the following scalar types: Long, Int; but got "
                         f"{_torch_type(idx)} instead (while checking arguments for embedding)")
    w = to_tensor(weight)
    if max_norm is not None:
        _renorm_rows_(w, idx, max_norm, norm_type)
    if padding_idx is not None:
        row = padding_idx % w.shape[0]
        keep = np.ones((w.shape[0], 1), dtype=bool)
        keep[row] = False
        w = ops.where(tensor(keep), w, ops.stop_gradient(w))
    flat = ops.index_select(w, 0, idx.reshape(-1))
    return flat.reshape(tuple(idx.shape) + (w.shape[1],))


def _renorm_rows_(weight, idx, max_norm: float, norm_type: float):
    """PyTorch's embedding_renorm_: the rows of weight that idx looks up and whose
    norm_type-norm exceeds max_norm are scaled, in place and unrecorded, to norm max_norm."""
    with no_grad():
        rows = ops.any(ops.eq(idx.reshape(-1, 1), arange(weight.shape[0])), dim=0)
        norms = ops.sum(ops.abs(weight) ** norm_type, dim=1) ** (1.0 / norm_type)
        shrink = ops.logical_and(rows, ops.gt(norms, max_norm))
        scale = ops.where(shrink, max_norm / (norms + 1e-7), 1.0)
        weight.mul_(scale.reshape(-1, 1))


def _torch_type(t) -> str:
    return {"f32": "torch.FloatTensor", "f64": "torch.DoubleTensor", "bool": "torch.BoolTensor",
            "i32": "torch.IntTensor", "i64": "torch.LongTensor"}[dtype_of(t)]


def one_hot(tensor, num_classes: int = -1):  # PyTorch's keyword name (shadows creation.tensor)
    """int64 (..., num_classes) with a 1 at each index (num_classes=-1: max + 1)."""
    idx = to_tensor(tensor)
    if dtype_of(idx) != "i64":
        raise user_error(RuntimeError, "one_hot is only applicable to index tensor of type "
                                       "LongTensor.")
    if num_classes == -1:
        num_classes = int(np.asarray(idx).max()) + 1 if idx.numel() else 0
    if idx.numel() and not idx._expr.symbolic:     # PyTorch's checks (else a zero row)
        values = np.asarray(idx)
        if values.min() < 0:
            raise user_error(RuntimeError, "Class values must be non-negative.")
        if values.max() >= num_classes:
            raise user_error(RuntimeError, "Class values must be smaller than num_classes.")
    classes = ops.reshape(to_tensor(np.arange(num_classes, dtype=np.int64)),
                          (1,) * idx.ndim + (num_classes,))
    return ops.eq(ops.unsqueeze(idx, -1), classes).long()


@torch_op("ConstantPadNd")
def _zero_pad(x, lo, hi):
    return apply("pad", x, lo=tuple(lo), hi=tuple(hi), interior=(0,) * x.ndim)


def _source_index(size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    i = np.arange(-lo, size + hi)
    if mode == "reflect":
        if lo >= size or hi >= size:
            raise user_error(RuntimeError, f"Argument #4: Padding size should be less than the "
                             f"corresponding input dimension, but got: padding ({lo}, {hi}) "
                             f"at dimension of input {size}")
        i = np.abs(i)
        return np.where(i >= size, 2 * (size - 1) - i, i)
    if mode == "replicate":
        return np.clip(i, 0, size - 1)
    return np.mod(i, size)                              # circular


def pad(input, pad, mode: str = "constant", value=None):
    """Pads the last len(pad)//2 dims: pad = (left, right) of the last dim, then the one
    before, ...; negative amounts crop (constant mode)."""
    x = to_tensor(input)
    if len(pad) % 2:
        raise user_error(RuntimeError, "Padding length must be divisible by 2")
    if len(pad) // 2 > x.ndim:
        raise user_error(RuntimeError, "Padding length should be less than or equal to two "
                         "times the input dimension but got padding length "
                         f"{len(pad)} and input of dimension {x.ndim}")
    pairs = {x.ndim - 1 - k: (int(pad[2 * k]), int(pad[2 * k + 1])) for k in range(len(pad) // 2)}
    if mode == "constant":
        index = [slice(None)] * x.ndim
        for d, (lo, hi) in pairs.items():
            index[d] = slice(-lo if lo < 0 else None, x.shape[d] + hi if hi < 0 else None)
        if any(lo < 0 or hi < 0 for lo, hi in pairs.values()):
            x = x[tuple(index)]
        lo = [max(pairs.get(d, (0, 0))[0], 0) for d in range(x.ndim)]
        hi = [max(pairs.get(d, (0, 0))[1], 0) for d in range(x.ndim)]
        out = _zero_pad(x, lo, hi)
        if value:
            ones = np.pad(np.zeros(tuple(x.shape), dtype=bool), list(zip(lo, hi)),
                          constant_values=True)
            out = ops.where(tensor(ones), tensor(np.full(ones.shape, value), dtype=out.dtype),
                            out)
        return out
    if mode not in ("reflect", "replicate", "circular"):
        raise user_error(NotImplementedError, f"Unsupported padding mode: {mode}")
    for d, (lo, hi) in pairs.items():
        x = ops.index_select(x, d, tensor(_source_index(x.shape[d], lo, hi, mode)))
    return x


def _channel_dropout(input, p: float, training: bool, spatial: int):
    if p < 0.0 or p > 1.0:
        raise user_error(ValueError, f"dropout probability has to be between 0 and 1, but "
                                     f"got {p}")
    x = to_tensor(input)
    if not training or p == 0.0:
        return x
    mask_shape = tuple(x.shape[:x.ndim - spatial]) + (1,) * spatial
    keep = (rand(*mask_shape) > p).to(x.dtype)
    return x * keep * (1.0 / (1.0 - p)) if p < 1.0 else x * 0.0


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zeroes whole channels of (N, C, L) input."""
    return _channel_dropout(input, p, training, 1)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zeroes whole channels of (N, C, H, W) input."""
    return _channel_dropout(input, p, training, 2)


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False):
    if not training or p == 0.0:
        return to_tensor(input)
    x = as_float(input)
    alpha = -1.7580993408473766
    keep = (rand(*x.shape) > p).to(x.dtype)
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    return (x * keep + alpha * (1 - keep)) * a + (-a * alpha * p)


# ---- interpolate ---------------------------------------------------------------------------

def _linear_matrix(n_in: int, n_out: int, align_corners: bool, scale) -> np.ndarray:
    """(n_out, n_in) weights of 1-d linear interpolation, PyTorch's source coordinates."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        if align_corners:
            src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            ratio = 1.0 / scale if scale else n_in / n_out
            src = max((i + 0.5) * ratio - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        w1 = src - i0
        m[i, i0] += 1.0 - w1
        m[i, i1] += w1
    return m


def _nearest_index(n_in: int, n_out: int, scale) -> np.ndarray:
    ratio = 1.0 / scale if scale else n_in / n_out
    return np.minimum(np.floor(np.arange(n_out) * ratio).astype(np.int64), n_in - 1)


def _along(x, d: int, matrix: np.ndarray):
    """Applies an (out, in) matrix along axis d of x."""
    m = tensor(matrix, dtype=x.dtype)
    moved = ops.movedim(x, d, -1)
    return ops.movedim(ops.matmul(moved, ops.t(m)), -1, d)


def adaptive_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) averaging weights of adaptive pooling: window i covers
    [floor(i n_in / n_out), ceil((i + 1) n_in / n_out))."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return m


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias=False):
    """Resizes the spatial dims of (N, C, *spatial) input: nearest, linear, bilinear,
    trilinear (align_corners as in PyTorch), area (adaptive average)."""
    x = as_float(input)
    spatial = x.ndim - 2
    if spatial < 1:
        raise user_error(ValueError, f"Input Error: Only 3D, 4D and 5D input Tensors "
                         f"supported (got {x.ndim}D) for the modes: nearest | linear | "
                         "bilinear | bicubic | trilinear | area | nearest-exact "
                         f"(got {mode})")
    if (size is None) == (scale_factor is None):
        raise user_error(ValueError, "either size or scale_factor should be defined"
                         if size is None else "only one of size or scale_factor should be "
                         "defined")
    if mode in ("nearest", "area") and align_corners is not None:
        raise user_error(ValueError, "align_corners option can only be set with the "
                         "interpolating modes: linear | bilinear | bicubic | trilinear")
    scales = (scale_factor if isinstance(scale_factor, (tuple, list))
              else [scale_factor] * spatial)
    if size is not None:
        sizes = list(size) if isinstance(size, (tuple, list)) else [size] * spatial
        scales = [None] * spatial
    else:
        sizes = [int(math.floor(x.shape[2 + k] * scales[k])) for k in range(spatial)]
        if recompute_scale_factor:
            scales = [None] * spatial
    want = {"linear": 1, "bilinear": 2, "trilinear": 3}
    if mode in want and want[mode] != spatial:
        raise user_error(NotImplementedError, f"Got {x.ndim}D input, but {mode} mode needs "
                                              f"{want[mode] + 2}D input")
    for k in range(spatial):
        d, n_in, n_out = 2 + k, x.shape[2 + k], sizes[k]
        if mode == "nearest":
            x = ops.index_select(x, d, tensor(_nearest_index(n_in, n_out, scales[k])))
        elif mode in want:
            x = _along(x, d, _linear_matrix(n_in, n_out, bool(align_corners), scales[k]))
        elif mode == "area":
            x = _along(x, d, adaptive_matrix(n_in, n_out))
        else:
            raise user_error(NotImplementedError, f"interpolate: mode {mode!r} is not "
                                                  "implemented by gradjit")
    return x


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)
