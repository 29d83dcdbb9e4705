"""Convolution and pooling of nn.functional, lowered to existing primitives.

conv1d/conv2d build im2col patches of the zero-padded input with one gather at constant
positions and contract them with the weight per sample: (O, C*K) @ (N, C*K, L), which is
the NCHW output. Grouped convolutions stack strided slices (one per kernel offset) and use
an einsum per group. Pooling takes the same windows and
reduces them (max, or sum / count). Adaptive average pooling is a product with an (out, in)
averaging matrix per axis. Gradients come from the slice/pad/dot_general rules."""
from __future__ import annotations

import itertools
import math

import numpy as np

import tracer.ops as ops
from tracer.creation import tensor
from tracer.nn.functional_act import as_float
from tracer.nn.functional_misc import _along, _zero_pad, adaptive_matrix, pad as _pad
from tracer.ops.operands import user_error
from tracer.record import apply, torch_op

__all__ = ["conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "unfold"]


def _tuple(v, nd: int, what: str) -> tuple:
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd
    if len(t) != nd:
        raise user_error(RuntimeError, f"expected {what} to be a single integer value or a "
                                       f"list of {nd} values to match the convolution "
                                       f"dimensions, but got {what}={list(t)}")
    return tuple(int(a) for a in t)


def _window_index(offsets, stride, dilation, out) -> tuple:
    """The strided slice of the padded input that kernel offset `offsets` sees."""
    return (Ellipsis,) + tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                               for o, s, d, n in zip(offsets, stride, dilation, out))


def _windows(x, kernel, stride, dilation, out):
    """(..., *out, prod(kernel)): every window's elements, kernel offsets last. One slice
    primitive per kernel offset (recorded directly: indexing would add a reshape each), so
    callers run inside a @torch_op."""
    lead = x.ndim - len(kernel)
    pieces = []
    for offsets in itertools.product(*(range(k) for k in kernel)):
        start = (0,) * lead + tuple(o * d for o, d in zip(offsets, dilation))
        limit = tuple(x.shape[:lead]) + tuple(o * d + s * (n - 1) + 1 for o, d, s, n in
                                              zip(offsets, dilation, stride, out))
        piece = apply("slice", x, start=start, limit=limit, stride=(1,) * lead + stride)
        pieces.append(apply("reshape", piece, shape=tuple(piece.shape) + (1,)))
    return apply("concatenate", *pieces, axis=x.ndim) if len(pieces) > 1 else pieces[0]


def _im2col_positions(sizes, channels, kernel, stride, dilation, out):
    """(C, *kernel, *out) positions in one sample's flattened (C, *sizes) input: a sum of
    scaled iotas (affine in each axis), so the program holds no index array and the code
    generator computes each position from the loop counters (codegen/affine_index.py):
    along the output row they are consecutive (stride 1) or evenly spaced loads."""
    nd = len(sizes)
    shape = (channels,) + tuple(kernel) + tuple(out)
    idx = _iota(shape, 0) * math.prod(sizes)
    for i in range(nd):
        # the input coordinate along axis i: kernel offset * dilation + out * stride
        coord = _iota(shape, 1 + i) * dilation[i] + _iota(shape, 1 + nd + i) * stride[i]
        idx = idx + coord * math.prod(sizes[i + 1:])
    return idx


def _iota(shape, dim: int):
    return apply("iota", dtype="i64", shape=shape, dim=dim)


def _out_size(size, k, s, d, lo, hi, ceil_mode=False) -> int:
    span = size + lo + hi - d * (k - 1) - 1
    if span < 0:
        return 0
    n = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (n - 1) * s >= size + lo:      # the last window must start inside
        n -= 1
    return n


def _batched(x, nd: int, what: str):
    if x.ndim == nd + 1:
        return x.unsqueeze(0), True
    if x.ndim != nd + 2:
        raise user_error(RuntimeError, f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) "
                                       f"input to {what}, but got input of size: "
                                       f"{list(x.shape)}")
    return x, False


@torch_op("Convolution", saves=(0, 1))
def _conv(input, weight, bias, stride, padding, dilation, groups, nd: int):
    x, unbatched = _batched(as_float(input), nd, f"conv{nd}d")
    w = as_float(weight)
    n, c = x.shape[0], x.shape[1]
    o, cg = w.shape[0], w.shape[1]
    kernel = tuple(w.shape[2:])
    stride, dilation = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation")
    if c != cg * groups:
        raise user_error(RuntimeError, f"Given groups={groups}, weight of size "
                         f"{list(w.shape)}, expected input{list(x.shape)} to have "
                         f"{cg * groups} channels, but got {c} channels instead")
    if o % groups:
        raise user_error(RuntimeError, "Given groups={groups}, expected weight to be "
                         f"divisible by {groups} at dimension 0, but got weight of size "
                         f"{list(w.shape)} instead")
    if isinstance(padding, str):
        if padding == "valid":
            lo = hi = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise user_error(ValueError, "padding='same' is not supported for strided "
                                             "convolutions")
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            lo = tuple(t // 2 for t in total)
            hi = tuple(t - t // 2 for t in total)
        else:
            raise user_error(ValueError, f"Invalid padding string '{padding}', should be one "
                                         "of {'valid', 'same'}")
    else:
        lo = hi = _tuple(padding, nd, "padding")
    out = tuple(_out_size(x.shape[2 + i], kernel[i], stride[i], dilation[i], lo[i], hi[i])
                for i in range(nd))
    if any(v <= 0 for v in out):
        raise user_error(RuntimeError, f"Calculated padded input size per channel: "
                         f"({' x '.join(str(x.shape[2 + i] + lo[i] + hi[i]) for i in range(nd))})"
                         f". Kernel size: ({' x '.join(map(str, kernel))}). Kernel size can't be "
                         "greater than actual input size")
    kprod = math.prod(kernel)
    length = math.prod(out)
    if groups == 1:
        # (N, C*K, L) columns by one gather at affine positions, then (O, C*K) @ columns
        # per sample: (N, O, L) is already NCHW order (no transpose of the output), and each
        # column element is one load (stacked slices evaluate every slice per element).
        # Zero padding: the padded input is stored first (a small kernel), so the gather's
        # positions are affine with no bounds test, and it is laid out (N, C, *K, *out):
        # its innermost loop runs along the output row reading consecutive (stride 1)
        # input elements, which LLVM vectorises (NOTE: the CNN step's conv 3->16 on 32x32,
        # padding 1: a bounds-tested index per element and a stored index array,
        # ~0.6-0.9 ms; one zero after each sample pointed at by the padding's positions)
        if any(lo) or any(hi):
            x = _zero_pad(x, (0, 0) + lo, (0, 0) + hi)
        sizes = tuple(x.shape[2:])
        flat = x.reshape(n, c * math.prod(sizes))
        positions = _im2col_positions(sizes, c, kernel, stride, dilation, out)
        cols = apply("gather", flat, positions, axis=1)
        y = ops.matmul(w.reshape(1, o, c * kprod).expand(n, o, c * kprod),
                       cols.reshape(n, c * kprod, length))
        y = y.reshape((n, o) + out)
    else:
        if any(lo) or any(hi):
            x = _zero_pad(x, (0, 0) + lo, (0, 0) + hi)
        cols = _windows(x, kernel, stride, dilation, out)           # (N, C, *out, K)
        cols = ops.movedim(cols, 1, -2).reshape(n * length, groups, cg * kprod)
        wk = w.reshape(groups, o // groups, cg * kprod)
        y = ops.einsum("mgk,gok->mgo", cols, wk).reshape(n * length, o)
        y = ops.movedim(y.reshape((n,) + out + (o,)), -1, 1)
    if bias is not None:
        y = y + bias.reshape((o,) + (1,) * nd)
    return y.squeeze(0) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation of (N, C, L) input with (O, C/groups, K) weight."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation of (N, C, H, W) input with (O, C/groups, KH, KW) weight."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


@torch_op("Im2Col", saves=(0,))
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: (N, C*prod(kernel), L) sliding-window columns of 4-D input."""
    x = as_float(input)
    kernel = _tuple(kernel_size, 2, "kernel_size")
    stride, dilation = _tuple(stride, 2, "stride"), _tuple(dilation, 2, "dilation")
    p = _tuple(padding, 2, "padding")
    out = tuple(_out_size(x.shape[2 + i], kernel[i], stride[i], dilation[i], p[i], p[i])
                for i in range(2))
    if any(p):
        x = _zero_pad(x, (0, 0) + p, (0, 0) + p)
    cols = _windows(x, kernel, stride, dilation, out)           # (N, C, oh, ow, K)
    n, c = x.shape[0], x.shape[1]
    return ops.movedim(cols, -1, 2).reshape(n, c * math.prod(kernel), math.prod(out))


# ---- pooling -------------------------------------------------------------------------------

def _tiles(x, kernel, stride, dilation, lo, hi, out):
    """(windows, kernel axes) when the windows tile the input (stride == kernel, no
    dilation, no padding): x as (..., K1, K2, ..., O1, O2, ...) by one reshape (after a slice
    of the rows no window reads) and one transpose, else None. Reduced over the K axes, the
    pooling's gradient is index remapping only: the stacked window slices' gradient was a
    sum of one strided pad per kernel offset (NOTE: the CNN step's 2x2 max pool backward
    kernel, ~3 ms -> ~0.5 ms). The kernel axes go before the window axes: a loop nest over
    (..., O1, K1, O2, K2) has the tiny K2 innermost (no vector lanes to fill, a carried
    accumulator per element); over (..., K1, K2, O1, O2) its innermost loop runs along O2
    reading every K2-th element, and the reduction over outer axes is vectorised
    (NOTE: the 2x2 max pool over 32x16x32x32, forward and gradient, 3.2 -> 1.4 ms, same bits)."""
    nd = len(kernel)
    if tuple(stride) != tuple(kernel) or any(d != 1 for d in dilation) or any(lo) or any(hi):
        return None
    lead = x.ndim - nd
    cut = tuple(o * k for o, k in zip(out, kernel))
    if cut != tuple(x.shape[lead:]):
        x = apply("slice", x, start=(0,) * x.ndim, limit=tuple(x.shape[:lead]) + cut,
                  stride=(1,) * x.ndim)
    shape = tuple(x.shape[:lead]) + tuple(d for o, k in zip(out, kernel) for d in (o, k))
    tiles = apply("reshape", x, shape=shape)
    perm = tuple(range(lead)) + tuple(lead + 2 * i + 1 for i in range(nd)) \
        + tuple(lead + 2 * i for i in range(nd))
    return apply("transpose", tiles, perm=perm), tuple(range(lead, lead + nd))


def _pool_geometry(x, nd, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = _tuple(kernel_size, nd, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else \
        _tuple(stride, nd, "stride")
    pad = _tuple(padding, nd, "padding")
    dilation = _tuple(dilation, nd, "dilation")
    for p, k in zip(pad, kernel):
        if p > k // 2:
            raise user_error(RuntimeError, "pad should be at most half of effective kernel "
                             f"size, but got pad={p}, kernel_size={k} and dilation=1")
    sizes = x.shape[x.ndim - nd:]
    out = tuple(_out_size(sizes[i], kernel[i], stride[i], dilation[i], pad[i], pad[i],
                          ceil_mode) for i in range(nd))
    # ceil mode: the last window may run past the right padding
    hi = tuple(max(pad[i], (out[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1
                   - sizes[i] - pad[i]) for i in range(nd))
    return kernel, stride, pad, hi, dilation, out


def _check_pool_out(x, nd: int, out: tuple, max_1d):
    """PyTorch's error for a window larger than the (padded) input: no output at all."""
    if min(out) > 0:
        return
    if max_1d:
        raise user_error(RuntimeError, f"{max_1d}Invalid computed output size: {out[0]}")
    channels = x.shape[x.ndim - nd - 1] if x.ndim > nd else 1
    sizes = (channels,) + (1,) * (nd == 1) + tuple(x.shape[x.ndim - nd:])
    outs = (channels,) + (1,) * (nd == 1) + tuple(out)
    raise user_error(RuntimeError, f"Given input size: ({'x'.join(map(str, sizes))}). "
                                   f"Calculated output size: ({'x'.join(map(str, outs))}). "
                                   "Output size is too small")


@torch_op("MaxPool2DWithIndices", saves=(0,))
def _max_pool(input, nd, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x = as_float(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise user_error(RuntimeError, f"max_pool{nd}d: Expected {nd + 1}D or {nd + 2}D "
                         f"(batch mode) tensor for input, but got: {list(x.shape)}")
    kernel, stride, lo, hi, dilation, out = _pool_geometry(
        x, nd, kernel_size, stride, padding, dilation, ceil_mode)
    _check_pool_out(x, nd, out, "max_pool1d() " if nd == 1 else None)
    lead = x.ndim - nd
    pads = [0, 0] * 0
    for i in reversed(range(nd)):
        pads += [lo[i], hi[i]]
    if not return_indices:
        tiles = _tiles(x, kernel, stride, dilation, lo, hi, out)
        if tiles is not None:
            return ops.amax(*tiles)
    xp = _pad(x, pads, value=-math.inf) if any(lo) or any(hi) else x
    wins = _windows(xp, kernel, stride, dilation, out)
    y = wins.amax(-1)
    if not return_indices:
        return y
    # the flat input position each window element reads, for the argmax of each window
    sizes = x.shape[lead:]
    grids = np.meshgrid(*(np.arange(n) for n in np.array(xp.shape[lead:])), indexing="ij")
    flat = np.zeros(tuple(xp.shape[lead:]), dtype=np.int64)
    for i in range(nd):
        flat = flat * sizes[i] + (grids[i] - lo[i])
    positions = np.stack([flat[_window_index(o, stride, dilation, out)]
                          for o in itertools.product(*(range(k) for k in kernel))], -1)
    arg = wins.argmax(-1, keepdim=True)
    table = ops.broadcast_to(tensor(positions), tuple(wins.shape))
    return y, ops.take_along_dim(table, arg, -1).squeeze(-1)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """The max of each (dilated) window of (N, C, H, W) input; -inf padding."""
    return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


@torch_op("AvgPool2D", saves=(0,))
def _avg_pool(input, nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x = as_float(input)
    kernel, stride, lo, hi, dilation, out = _pool_geometry(
        x, nd, kernel_size, stride, padding, 1, ceil_mode)
    _check_pool_out(x, nd, out, None)
    sizes = tuple(x.shape[x.ndim - nd:])
    tiles = _tiles(x, kernel, stride, dilation, lo, hi, out)
    if tiles is not None:
        return ops.sum(*tiles) / float(divisor_override or math.prod(kernel))
    if any(lo) or any(hi):
        x = _zero_pad(x, (0,) * (x.ndim - nd) + lo, (0,) * (x.ndim - nd) + hi)
    total = _windows(x, kernel, stride, dilation, out).sum(-1)
    if divisor_override:
        return total / float(divisor_override)
    # the divisor counts the window's elements inside the input (and its padding if
    # count_include_pad), never the extra right border of ceil mode
    counted = np.zeros(tuple(lo[i] + hi[i] + sizes[i] for i in range(nd)))
    inner = tuple(slice(0 if count_include_pad else lo[i],
                        lo[i] + sizes[i] + (lo[i] if count_include_pad else 0))
                  for i in range(nd))
    counted[inner] = 1.0
    count = np.stack([counted[_window_index(o, stride, dilation, out)]
                      for o in itertools.product(*(range(k) for k in kernel))], -1).sum(-1)
    return total / tensor(count, dtype=total.dtype)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return _avg_pool(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """The mean of each window of (N, C, H, W) input."""
    return _avg_pool(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


@torch_op("AdaptiveAvgPool2D", saves=(0,))
def _adaptive_avg(input, output_size, nd: int):
    x = as_float(input)
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    for k in range(nd):
        d = x.ndim - nd + k
        n_out = x.shape[d] if sizes[k] is None else int(sizes[k])
        if n_out != x.shape[d]:
            x = _along(x, d, adaptive_matrix(x.shape[d], n_out))
    return x


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg(input, output_size, 1)


def adaptive_avg_pool2d(input, output_size):
    """Averages (N, C, H, W) input over output_size windows (None keeps a size)."""
    return _adaptive_avg(input, output_size, 2)
