"""One program text, two meanings: the fuzzer's steps call `m.exp(x)`, `m.sum(x, 0, True)`,
`m.cond(...)`, where m is NP (NumPy, the reference formula) or GJ (gradjit: compiled under
jit, recorded lazily in the imperative front). Operators, indexing, slicing and in-place
updates (`y[1:] *= 2`) are written directly: NumPy arrays and gradjit Tensors spell them the
same, views included.
"""
from __future__ import annotations

import numpy as np

import gradjit as gj


class NP:
    """The NumPy formulas (the reference); control flow is plain Python."""
    exp, log, sin, cos, tan, tanh, sqrt = np.exp, np.log, np.sin, np.cos, np.tan, np.tanh, np.sqrt
    log1p, expm1, abs, sign, floor = np.log1p, np.expm1, np.abs, np.sign, np.floor
    maximum, minimum, where, matmul, outer = np.maximum, np.minimum, np.where, np.matmul, np.outer
    round, trunc = np.round, np.trunc

    @staticmethod
    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    @staticmethod
    def rsqrt(x):
        return 1 / np.sqrt(x)

    @staticmethod
    def relu(x):
        return np.maximum(x, 0)

    @staticmethod
    def clamp(x, lo, hi):
        return np.minimum(np.maximum(x, lo), hi)

    @staticmethod
    def reduce(kind, x, axis, keepdims):
        fn = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min, "prod": np.prod}
        return fn[kind](x, axis=axis, keepdims=keepdims)

    @staticmethod
    def var(x, axis, keepdims):
        return np.var(x, axis=axis, keepdims=keepdims, ddof=1)

    @staticmethod
    def logsumexp(x, axis, keepdims):
        m = np.max(x, axis=axis, keepdims=True)
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
        return out if keepdims else np.squeeze(out, axis=axis)

    @staticmethod
    def softmax(x, axis):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)

    @staticmethod
    def log_softmax(x, axis):
        s = x - np.max(x, axis=axis, keepdims=True)
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))

    @staticmethod
    def reshape(x, shape):
        return np.reshape(x, shape)

    @staticmethod
    def permute(x, perm):
        return np.transpose(x, perm)

    @staticmethod
    def cat(xs, axis):
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def stack(xs, axis):
        return np.stack(xs, axis=axis)

    @staticmethod
    def expand(x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def take_along(x, idx, axis):
        return np.take_along_axis(x, idx, axis=axis)

    @staticmethod
    def index_add(x, axis, idx, src):
        out = np.array(x, copy=True)
        np.add.at(np.moveaxis(out, axis, 0), idx, np.moveaxis(src, axis, 0))
        return out

    @staticmethod
    def clone(x):
        return np.array(x, copy=True)

    @staticmethod
    def to_int(x):
        return np.asarray(x).astype(np.int32)

    @staticmethod
    def to_float_like(x, like):
        return np.asarray(x).astype(np.asarray(like).dtype)

    @staticmethod
    def int_array(values):
        return np.asarray(values, np.int64)

    @staticmethod
    def cond(pred, true_fn, false_fn, *operands):
        return true_fn(*operands) if bool(pred) else false_fn(*operands)

    @staticmethod
    def fori_loop(lo, hi, body, init):
        c = init
        for i in range(lo, hi):
            c = body(i, c)
        return c

    @staticmethod
    def while_loop(cond_fn, body, init):
        c = init
        while bool(cond_fn(c)):
            c = body(c)
        return c

    @staticmethod
    def scan(f, init, xs):
        c, ys = init, []
        for k in range(xs.shape[0]):
            c, y = f(c, xs[k])
            ys.append(y)
        return c, np.stack(ys) if ys else np.zeros((0,) + np.shape(c), np.asarray(c).dtype)


class GJ:
    """The same formulas in gradjit: structured control flow through gj.cond / fori_loop /
    while_loop / scan."""
    exp, log, sin, cos, tan, tanh, sqrt = gj.exp, gj.log, gj.sin, gj.cos, gj.tan, gj.tanh, gj.sqrt
    log1p, expm1, abs, sign, floor = gj.log1p, gj.expm1, gj.abs, gj.sign, gj.floor
    maximum, minimum, where, matmul, outer = gj.maximum, gj.minimum, gj.where, gj.matmul, gj.outer
    round, trunc, sigmoid, rsqrt, relu = gj.round, gj.trunc, gj.sigmoid, gj.rsqrt, gj.relu
    cond, fori_loop, while_loop = gj.cond, gj.fori_loop, gj.while_loop

    @staticmethod
    def clamp(x, lo, hi):
        return gj.clamp(x, lo, hi)

    @staticmethod
    def reduce(kind, x, axis, keepdims):
        fn = {"sum": gj.sum, "mean": gj.mean, "amax": gj.amax, "amin": gj.amin, "prod": gj.prod}
        if kind == "prod" and isinstance(axis, tuple):
            for a in sorted(axis, reverse=True):
                x = gj.prod(x, a, keepdims)
            return x
        if axis is None and kind == "prod":
            out = gj.prod(x)            # torch.prod(x) has no keepdim: NumPy's shape by hand
            return gj.reshape(out, (1,) * x.ndim) if keepdims else out
        return fn[kind](x, axis=axis, keepdims=keepdims)

    @staticmethod
    def var(x, axis, keepdims):
        # PyTorch's spelling (Bessel's correction, as the NumPy reference's ddof=1); gradjit's
        # axis=/keepdims= spelling means NumPy's ddof=0 (tracer/ops/reduce.py)
        return gj.var(x, dim=axis, keepdim=keepdims)

    @staticmethod
    def logsumexp(x, axis, keepdims):
        return gj.logsumexp(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def softmax(x, axis):
        return gj.softmax(x, axis)

    @staticmethod
    def log_softmax(x, axis):
        return gj.log_softmax(x, axis)

    @staticmethod
    def reshape(x, shape):
        return gj.reshape(x, shape)

    @staticmethod
    def permute(x, perm):
        return gj.permute(x, perm)

    @staticmethod
    def cat(xs, axis):
        return gj.concatenate(xs, axis)

    @staticmethod
    def stack(xs, axis):
        return gj.stack(xs, axis)

    @staticmethod
    def expand(x, shape):
        return gj.broadcast_to(x, shape)

    @staticmethod
    def take_along(x, idx, axis):
        return gj.take_along_dim(x, gj.tensor(idx), axis)

    @staticmethod
    def index_add(x, axis, idx, src):
        return gj.index_add(x, axis, gj.tensor(idx), src)

    @staticmethod
    def clone(x):
        return x.clone()

    @staticmethod
    def to_int(x):
        return x.to(gj.int32)

    @staticmethod
    def to_float_like(x, like):
        return x.to(like.dtype)

    @staticmethod
    def int_array(values):
        return gj.tensor(np.asarray(values, np.int64))

    @staticmethod
    def scan(f, init, xs):
        return gj.scan(f, init, xs)
