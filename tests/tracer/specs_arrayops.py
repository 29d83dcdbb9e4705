"""Op table: structural array ops (tracer/ops/structural.py), against NumPy."""
from __future__ import annotations

import math

import numpy as np

import tracer.ops as gj
from tests.tracer.specs import OpSpec

S = OpSpec
SQ = (((3, 4),), ((2, 3, 3),), ((1, 1),), ((4, 2),))


def _np_tril_batched(k):
    return lambda x: x * np.tri(x.shape[-2], x.shape[-1], k)


def _np_triu_batched(k):
    return lambda x: x * (1 - np.tri(x.shape[-2], x.shape[-1], k - 1))


STRUCTURAL = [
    S("tril", gj.tril, _np_tril_batched(0), SQ, node="Tril", public=gj.tril),
    S("tril_k", lambda x: x.tril(-1), _np_tril_batched(-1), SQ),
    S("tril_numpy_k", lambda x: gj.tril(x, k=2), _np_tril_batched(2), SQ),
    S("triu", gj.triu, _np_triu_batched(0), SQ, node="Triu", public=gj.triu),
    S("triu_k", lambda x: x.triu(1), _np_triu_batched(1), SQ),
    S("diag", gj.diag, np.diag, (((3, 4),), ((4,),), ((1,),)), node="Diagonal",
      public=gj.diag),
    S("diag_offset", lambda x: x.diag(-1), lambda x: np.diag(x, -1), (((3, 4),), ((3,),))),
    S("diag_k", lambda x: gj.diag(x, k=2), lambda x: np.diag(x, k=2), (((3, 4),), ((2,),))),
    S("diagonal", gj.diagonal, np.diagonal, (((3, 4),), ((2, 3, 4),), ((1, 5),)),
      node="Diagonal", public=gj.diagonal),
    S("diagonal_offset_dims", lambda x: x.diagonal(1, 2, 0),
      lambda x: np.diagonal(x, 1, 2, 0), (((2, 3, 4),),)),
    S("diagonal_numpy", lambda x: gj.diagonal(x, -1, axis1=-1, axis2=-2),
      lambda x: np.diagonal(x, -1, -1, -2), (((2, 3, 4),),)),
    S("diagonal_empty", lambda x: gj.diagonal(x, 5), lambda x: np.diagonal(x, 5),
      (((3, 4),),)),
    S("trace", gj.trace, np.trace, (((3, 4),), ((4, 3),), ((1, 1),)), node="Trace",
      public=gj.trace),
    S("trace_numpy", lambda x: gj.trace(x, 1, axis1=1, axis2=2),
      lambda x: np.trace(x, 1, 1, 2), (((2, 3, 4),),)),
    S("flip", lambda x: gj.flip(x, (0, -1)), lambda x: np.flip(x, (0, -1)),
      (((3, 4),), ((2, 3, 4),), ((1, 1),)), node="Flip", public=gj.flip),
    S("flip_all", lambda x: gj.flip(x), np.flip, (((2, 3, 4),), ((),))),
    S("flip_axis", lambda x: gj.flip(x, axis=1), lambda x: np.flip(x, 1), (((2, 3, 4),),)),
    S("fliplr", gj.fliplr, np.fliplr, (((3, 4),), ((2, 3, 4),)), node="Flip",
      public=gj.fliplr),
    S("flipud", gj.flipud, np.flipud, (((3, 4),), ((5,),)), node="Flip", public=gj.flipud),
    S("roll", lambda x: gj.roll(x, 1, 0), lambda x: np.roll(x, 1, 0),
      (((3, 4),), ((5,),), ((1, 2),)), node="Roll", public=gj.roll),
    S("roll_flat", lambda x: x.roll(-3), lambda x: np.roll(x, -3), (((3, 4),), ((2,),))),
    S("roll_pairs", lambda x: gj.roll(x, (2, -7), (-1, 0)),
      lambda x: np.roll(x, (2, -7), (-1, 0)), (((3, 4),), ((2, 3, 5),))),
    S("roll_numpy", lambda x: gj.roll(x, shift=5, axis=1), lambda x: np.roll(x, 5, 1),
      (((3, 4),),)),
    S("tile", lambda x: gj.tile(x, (2, 1, 3)), lambda x: np.tile(x, (2, 1, 3)),
      (((3, 4),), ((),), ((4,),), ((2, 1, 3),)), node="Repeat", public=gj.tile),
    S("tile_short", lambda x: x.tile((2,)), lambda x: np.tile(x, 2), (((3, 4),),)),
    S("tensor_repeat", lambda x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)),
      (((3, 4),), ((),), ((1, 2, 1),)), node="Repeat", public=gj.structural.tensor_repeat),
    S("repeat", lambda x: gj.repeat(x, 2, axis=1), lambda x: np.repeat(x, 2, 1),
      (((3, 4),), ((2, 3, 1),)), node="IndexSelect", public=gj.repeat),
    S("repeat_flat", lambda x: gj.repeat(x, 3), lambda x: np.repeat(x, 3),
      (((3, 4),), ((),))),
    S("repeat_counts", lambda x: gj.repeat(x, [2, 0, 1], axis=0),
      lambda x: np.repeat(x, [2, 0, 1], 0), (((3, 4),),)),
    S("repeat_interleave", lambda x: x.repeat_interleave(2, dim=0),
      lambda x: np.repeat(x, 2, 0), (((3, 4),), ((2,),)), node="IndexSelect",
      public=gj.repeat_interleave),
    S("repeat_interleave_counts", lambda x: gj.repeat_interleave(x, np.array([1, 3, 0, 2]), 1),
      lambda x: np.repeat(x, [1, 3, 0, 2], 1), (((3, 4),),)),
    S("meshgrid", lambda x, y: gj.meshgrid(x, y, indexing="ij"),
      lambda x, y: tuple(np.meshgrid(x, y, indexing="ij")), (((3,), (4,)), ((1,), (2,))),
      node="Expand", public=gj.meshgrid),
    S("meshgrid_xy", lambda x, y, z: gj.meshgrid([x, y, z], indexing="xy"),
      lambda x, y, z: tuple(np.meshgrid(x, y, z)), (((3,), (4,), (2,)),)),
    S("meshgrid_sparse", lambda x, y: gj.meshgrid(x, y, indexing="xy", sparse=True),
      lambda x, y: tuple(np.meshgrid(x, y, sparse=True)), (((3,), (4,)),)),
    S("pad", lambda x: gj.pad(x, ((1, 2), (0, 3))), lambda x: np.pad(x, ((1, 2), (0, 3))),
      (((3, 4),),), node="ConstantPadNd", public=gj.pad),
    S("pad_value", lambda x: gj.pad(x, 2, constant_values=1.5),
      lambda x: np.pad(x, 2, constant_values=1.5), (((3, 4),), ((2,),), ((0, 2),))),
    S("pad_values_pairs", lambda x: gj.pad(x, (1, 2), constant_values=((1, 2), (3, 4))),
      lambda x: np.pad(x, (1, 2), constant_values=((1, 2), (3, 4))), (((3, 4),),)),
    S("pad_edge", lambda x: gj.pad(x, ((2, 1), (0, 3)), mode="edge"),
      lambda x: np.pad(x, ((2, 1), (0, 3)), mode="edge"), (((3, 4),), ((1, 1),))),
    S("pad_reflect", lambda x: gj.pad(x, ((2, 1), (3, 3)), mode="reflect"),
      lambda x: np.pad(x, ((2, 1), (3, 3)), mode="reflect"), (((3, 4),), ((2, 2),))),
    S("pad_symmetric", lambda x: gj.pad(x, (1, 2), mode="symmetric"),
      lambda x: np.pad(x, (1, 2), mode="symmetric"), (((3, 4),), ((1, 2),))),
    S("pad_wrap", lambda x: gj.pad(x, 3, mode="wrap"),
      lambda x: np.pad(x, 3, mode="wrap"), (((3, 4),), ((2,),))),
]


def _np_cumextreme(better, axis):
    def ref(x):
        a = np.moveaxis(x, axis, -1)
        values, indices = np.empty_like(a), np.zeros(a.shape, np.int64)
        best, where = a[..., 0], np.zeros(a.shape[:-1], np.int64)
        for i in range(a.shape[-1]):
            take = better(a[..., i], best)
            best, where = np.where(take, a[..., i], best), np.where(take, i, where)
            values[..., i], indices[..., i] = best, where
        return np.moveaxis(values, -1, axis), np.moveaxis(indices, -1, axis)
    return ref


CUM_SHAPES = (((3, 4),), ((2, 3, 4),), ((1,),), ((4,),))
CUMULATIVE = [
    S("cumsum", lambda x: gj.cumsum(x, 0), lambda x: np.cumsum(x, 0), CUM_SHAPES,
      node="Cumsum", public=gj.cumsum),
    S("cumsum_last", lambda x: x.cumsum(-1), lambda x: np.cumsum(x, -1), CUM_SHAPES),
    S("cumsum_flat", lambda x: gj.cumsum(x), np.cumsum, (((3, 4),), ((),))),
    S("cumsum_axis", lambda x: gj.cumsum(x, axis=1), lambda x: np.cumsum(x, 1),
      (((2, 3, 4),),)),
    S("cumprod", lambda x: gj.cumprod(x, 1), lambda x: np.cumprod(x, 1),
      (((3, 4),), ((2, 3, 4),), ((1, 1),)), node="Cumprod", public=gj.cumprod),
    S("cumprod_method", lambda x: x.cumprod(0), lambda x: np.cumprod(x, 0), CUM_SHAPES),
    S("logcumsumexp", lambda x: gj.logcumsumexp(x, 1),
      lambda x: np.logaddexp.accumulate(x, 1), (((3, 4),), ((2, 3, 4),)),
      node="Logcumsumexp", public=gj.logcumsumexp),
    S("logcumsumexp_method", lambda x: x.logcumsumexp(0),
      lambda x: np.logaddexp.accumulate(x, 0), CUM_SHAPES),
    S("logcumsumexp_reverse", lambda x: gj.logcumsumexp(x, axis=1, reverse=True),
      lambda x: np.flip(np.logaddexp.accumulate(np.flip(x, 1), 1), 1), (((3, 4),),)),
    S("cummax", lambda x: tuple(gj.cummax(x, 1)), _np_cumextreme(np.greater_equal, 1),
      (((3, 4),), ((2, 3, 4),)), node="Cummax", public=gj.cummax),
    S("cummax_method", lambda x: tuple(x.cummax(0)), _np_cumextreme(np.greater_equal, 0),
      CUM_SHAPES),
    S("cummin", lambda x: tuple(gj.cummin(x, -1)), _np_cumextreme(np.less_equal, -1),
      (((3, 4),), ((2, 3, 4),), ((1,),)), node="Cummin", public=gj.cummin),
]


def _np_sort_desc(x, axis):
    order = np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
    order = x.shape[axis] - 1 - order
    return np.take_along_axis(x, order, axis), order


def _np_topk(x, k):
    values, order = _np_sort_desc(x, -1)
    return values[..., :k], order[..., :k]


def _np_lower_median(x, axis):
    order = np.argsort(x, axis=axis, kind="stable")
    pos = (x.shape[axis] - 1) // 2
    idx = np.take(order, [pos], axis)
    return np.squeeze(np.take_along_axis(x, idx, axis), axis), np.squeeze(idx, axis)


SORT_SHAPES = (((3, 4),), ((2, 3, 5),), ((1,),), ((6,),))
SORTING = [
    S("sort", lambda x: tuple(gj.sort(x)),
      lambda x: (np.sort(x, -1), np.argsort(x, -1, kind="stable")), SORT_SHAPES,
      node="Sort", public=gj.sort),
    S("sort_dim0", lambda x: tuple(x.sort(0)),
      lambda x: (np.sort(x, 0), np.argsort(x, 0, kind="stable")), (((3, 4),), ((2, 3, 5),))),
    S("sort_descending", lambda x: tuple(gj.sort(x, 1, descending=True)),
      lambda x: _np_sort_desc(x, 1), (((3, 4),), ((2, 3, 5),))),
    S("sort_numpy", lambda x: gj.sort(x, axis=0), lambda x: np.sort(x, 0), SORT_SHAPES),
    S("sort_numpy_flat", lambda x: gj.sort(x, axis=None), lambda x: np.sort(x, None),
      (((3, 4),),)),
    S("argsort", lambda x: gj.argsort(x, 0), lambda x: np.argsort(x, 0, kind="stable"),
      SORT_SHAPES, grad=False, public=gj.argsort),
    S("argsort_method", lambda x: x.argsort(descending=True),
      lambda x: _np_sort_desc(x, -1)[1], SORT_SHAPES, grad=False),
    S("msort", gj.msort, lambda x: np.sort(x, 0), (((3, 4),), ((5,),)), node="Sort",
      public=gj.msort),
    S("topk", lambda x: tuple(gj.topk(x, 2)), lambda x: _np_topk(x, 2),
      (((3, 4),), ((2, 3, 5),), ((6,),)), node="Topk", public=gj.topk),
    S("topk_smallest", lambda x: tuple(x.topk(3, dim=0, largest=False)),
      lambda x: (np.sort(x, 0)[:3], np.argsort(x, 0, kind="stable")[:3]), (((4, 3),),)),
    S("kthvalue", lambda x: tuple(gj.kthvalue(x, 2)),
      lambda x: (np.sort(x, -1)[..., 1], np.argsort(x, -1, kind="stable")[..., 1]),
      (((3, 4),), ((2, 3, 5),)), node="Kthvalue", public=gj.kthvalue),
    S("kthvalue_keepdim", lambda x: tuple(x.kthvalue(1, 0, keepdim=True)),
      lambda x: (np.sort(x, 0)[:1], np.argsort(x, 0, kind="stable")[:1]), (((3, 4),),)),
    S("median", gj.median, lambda x: np.sort(x, None)[(x.size - 1) // 2],
      (((3, 4),), ((5,),), ((1,),)), node="Median", public=gj.median),
    S("median_dim", lambda x: tuple(x.median(1)), lambda x: _np_lower_median(x, 1),
      (((3, 4),), ((2, 5, 3),))),
    S("median_numpy", lambda x: gj.median(x, axis=0), lambda x: np.median(x, 0),
      (((4, 3),), ((5, 2),))),
    S("median_numpy_keepdims", lambda x: gj.median(x, keepdims=True),
      lambda x: np.median(x, keepdims=True), (((4, 3),),)),
    S("quantile", lambda x: gj.quantile(x, 0.3), lambda x: np.quantile(x, 0.3),
      (((3, 4),), ((5,),)), node="Quantile", public=gj.quantile),
    S("quantile_dim", lambda x: x.quantile([0.1, 0.5, 1.0], dim=1, keepdim=True),
      lambda x: np.quantile(x, [0.1, 0.5, 1.0], axis=1, keepdims=True), (((3, 4),),)),
] + [S(f"quantile_{m}", lambda x, m=m: gj.quantile(x, [0.2, 0.625], axis=0, method=m),
       lambda x, m=m: np.quantile(x, [0.2, 0.625], axis=0, method=m), (((5, 3),),))
     for m in ("lower", "higher", "nearest", "midpoint")] + [
    S("nanquantile", lambda x: gj.nanquantile(x, 0.4, 1), lambda x: np.nanquantile(x, 0.4, 1),
      (((3, 4),),), node="Nanquantile", public=gj.nanquantile),
]

COUNTING = [
    S("count_nonzero", lambda x: gj.count_nonzero(x * (x > 0)),
      lambda x: np.count_nonzero(x * (x > 0)), (((3, 4),), ((),)), grad=False,
      public=gj.count_nonzero),
    S("count_nonzero_axis", lambda x: gj.count_nonzero(x * (x > 0), axis=1, keepdims=True),
      lambda x: np.count_nonzero(x * (x > 0), axis=1, keepdims=True), (((3, 4),),),
      grad=False),
]

SEG = np.array([0, 2, 0, 5, 1])


def _np_segment_sum(x, k):
    out = np.zeros((k,) + x.shape[1:])
    for i, s in enumerate(SEG[:len(x)]):
        if 0 <= s < k:
            out[s] += x[i]
    return out


def _np_weighted_lse(x, b, axis):
    s = np.sum(b * np.exp(x), axis=axis)
    return np.log(np.abs(s)), np.sign(s)


_B = np.array([[1.0, -0.5, 2.0, 0.25], [0.5, 1.5, 0.0, 1.0], [2.0, 1.0, 1.0, 0.1]], np.float32)
JAX_NN = [
    S("segment_sum", lambda x: gj.segment_sum(x, SEG, 3), lambda x: _np_segment_sum(x, 3),
      (((5, 2),), ((5,),)), node="IndexAdd", public=gj.segment_sum),
    S("one_hot", lambda x: gj.one_hot(np.array([0, 3, -1, 2]), 4) * x,
      lambda x: np.eye(4)[[0, 3, 3, 2]] * np.array([1, 1, 0, 1])[:, None] * x,
      (((4, 4),), ((4,),)), public=gj.one_hot),
    S("one_hot_axis", lambda x: gj.one_hot(np.array([[1, 0]]), 3, axis=0, dtype="int32") * x,
      lambda x: np.moveaxis(np.eye(3)[[[1, 0]]], -1, 0) * x, (((3, 1, 2),),)),
    S("gelu", gj.gelu, lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
      (((3, 4),), ((),)), node="Gelu", public=gj.gelu),
    S("gelu_tanh", lambda x: gj.gelu(x, approximate=True),
      lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
      (((3, 4),),)),
    S("logsumexp_b", lambda x: gj.logsumexp(x, axis=1, b=_B, return_sign=True),
      lambda x: _np_weighted_lse(x, _B, 1), (((3, 4),),)),
    S("logsumexp_b_positive", lambda x: gj.logsumexp(x, b=np.abs(_B) + 0.1, keepdims=True),
      lambda x: np.log(np.sum((np.abs(_B) + 0.1) * np.exp(x), keepdims=True)), (((3, 4),),)),
]
