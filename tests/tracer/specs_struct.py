"""Op table: linear algebra, shape ops and indexing."""
from __future__ import annotations

import numpy as np

import tracer.ops as gj
from tests.tracer.specs import MATRIX_SHAPES, OpSpec
from tests.tracer.specs_arrayops import COUNTING, CUMULATIVE, JAX_NN, SORTING, STRUCTURAL
from tracer.ops.getitem import getitem

S = OpSpec

MATMUL_SHAPES = (((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 5)), ((3, 4), (4, 5)),
                 ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (2, 4, 5)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)))

EINSUMS = {
    "ij,jk->ik": ((3, 4), (4, 5)),
    "ij,kj->ik": ((3, 4), (5, 4)),
    "bij,bjk->bik": ((2, 3, 4), (2, 4, 5)),
    "i,i->": ((4,), (4,)),
    "i,j->ij": ((3,), (4,)),
    "bi,bi->b": ((3, 4), (3, 4)),
    "ij,ij->ij": ((3, 4), (3, 4)),
    "ij,jk,kl->il": ((2, 3), (3, 4), (4, 5)),
    "...ij,...jk->...ik": ((2, 3, 4), (1, 4, 5)),
    "ij,jk": ((3, 4), (4, 5)),
    "ii->i": ((4, 4),),
    "ii": ((4, 4),),
    "ij->": ((3, 4),),
    "ij->ji": ((3, 4),),
    "iij,jk->ik": ((3, 3, 4), (4, 2)),
    "ab,cd,bd->ac": ((2, 3), (4, 5), (3, 5)),
}


def _einsum_spec(eq: str, shapes):
    return S(f"einsum[{eq}]", lambda *xs: gj.einsum(eq, *xs),
             lambda *xs: np.einsum(eq, *xs), (shapes,))


LINALG = [
    S("matmul", gj.matmul, np.matmul, MATMUL_SHAPES, node="Mm", public=gj.matmul),
    S("matmul_op", lambda x, y: x @ y, np.matmul, MATMUL_SHAPES[3:5]),
    S("dot", gj.dot, np.dot, (((4,), (4,)),), node="Dot", public=gj.dot),
    S("vdot", lambda a, b: gj.vdot(input=a, other=b), np.vdot, (((4,), (4,)),), node="Dot",
      public=gj.vdot),
    S("outer", gj.outer, np.outer, (((3,), (4,)),), node="Mul", public=gj.outer),
    S("mm", gj.mm, np.matmul, (((3, 4), (4, 5)),), node="Mm", public=gj.mm),
    S("bmm", gj.bmm, np.matmul, (((2, 3, 4), (2, 4, 5)),), node="Bmm", public=gj.bmm),
    S("mv", gj.mv, np.matmul, (((3, 4), (4,)),), node="Mv", public=gj.mv),
    S("inner", gj.inner, np.inner, (((3, 4), (2, 4)),)),
    S("tensordot", lambda x, y: gj.tensordot(x, y, 2), lambda x, y: np.tensordot(x, y, 2),
      (((2, 3, 4), (3, 4, 5)),)),
    S("tensordot_pairs", lambda x, y: gj.tensordot(x, y, ([0, 2], [1, 0])),
      lambda x, y: np.tensordot(x, y, ([0, 2], [1, 0])), (((2, 3, 4), (4, 2, 5)),)),
] + [_einsum_spec(eq, shapes) for eq, shapes in EINSUMS.items()]

M = MATRIX_SHAPES
SHAPE = [
    S("reshape", lambda x: x.reshape(2, -1), lambda x: x.reshape(2, -1), M, node="View",
      public=gj.reshape),
    S("reshape_tuple", lambda x: gj.reshape(x, (-1,)), lambda x: x.reshape(-1), M),
    S("view", lambda x: x.view(-1, 2), lambda x: x.reshape(-1, 2), M, node="View",
      public=gj.view),
    S("transpose", lambda x: x.transpose(0, -1), lambda x: np.swapaxes(x, 0, -1), M,
      node="Transpose", public=gj.swapdims),
    S("swapaxes", lambda x: gj.swapaxes(x, axis0=0, axis1=-1), lambda x: np.swapaxes(x, 0, -1),
      M, node="Transpose", public=gj.swapaxes),
    S("permute", lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1),
      (((2, 3, 4),),), node="Permute", public=gj.permute),
    S("t", gj.t, lambda x: x.T, (((3, 4),), ((4,),)), node="T", public=gj.t),
    S("T", lambda x: x.T, lambda x: x.T, M),
    S("mT", lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), M),
    S("expand", lambda x: x.expand(2, 3, -1), lambda x: np.broadcast_to(x, (2, 3, 4)),
      (((3, 4),), ((1, 4),), ((4,),)), node="Expand", public=gj.expand),
    S("broadcast_to", lambda x: gj.broadcast_to(x, (2, 3, 4)),
      lambda x: np.broadcast_to(x, (2, 3, 4)), (((3, 1),), ((),)), node="Expand",
      public=gj.broadcast_to),
    S("squeeze", gj.squeeze, np.squeeze, (((1, 3, 1),), ((1,),)), node="Squeeze",
      public=gj.squeeze),
    S("squeeze_dim", lambda x: x.squeeze(-1), lambda x: x.squeeze(-1), (((1, 3, 1),),)),
    S("unsqueeze", lambda x: x.unsqueeze(-1), lambda x: x[..., None], M + (((),),),
      node="Unsqueeze", public=gj.unsqueeze),
    S("flatten", gj.flatten, np.ravel, M + (((),),), node="View", public=gj.flatten),
    S("flatten_1", lambda x: x.flatten(1), lambda x: x.reshape(x.shape[0], -1), M),
    S("ravel", gj.ravel, np.ravel, M + (((),),)),
    S("unflatten", lambda x: x.unflatten(1, (2, -1)), lambda x: x.reshape(3, 2, 2),
      (((3, 4),),)),
    S("movedim", lambda x: gj.movedim(x, 0, -1), lambda x: np.moveaxis(x, 0, -1), M),
    S("cat", lambda x, y: gj.cat([x, y], 1), lambda x, y: np.concatenate([x, y], 1),
      (((3, 2), (3, 4)),), node="Cat", public=gj.cat),
    S("concatenate_axis", lambda x, y: gj.concatenate((x, y), axis=0),
      lambda x, y: np.concatenate([x, y], 0), (((1, 4), (3, 4)),)),
    S("stack", lambda x, y: gj.stack([x, y], -1), lambda x, y: np.stack([x, y], -1),
      (((3, 4), (3, 4)), ((), ())), node="Stack", public=gj.stack),
    S("split", lambda x: x.split(3, 1), lambda x: tuple(np.split(x, [3], 1)), (((2, 5),),),
      node="Split", public=gj.split),
    S("split_sizes", lambda x: gj.split(x, [1, 3], 0), lambda x: tuple(np.split(x, [1], 0)),
      (((4, 2),),)),
    S("chunk", lambda x: x.chunk(3, 0), lambda x: tuple(np.split(x, [3, 6], 0)),
      (((7, 2),),), node="Split", public=gj.chunk),
    S("narrow", lambda x: x.narrow(-1, -3, 2), lambda x: x[..., -3:-1], (((2, 5),), ((4,),)),
      node="Slice", public=gj.narrow),
    S("unbind", lambda x: x.unbind(1), lambda x: tuple(np.moveaxis(x, 1, 0)), M,
      node="Unbind", public=gj.unbind),
]

I2 = np.array([[0, 2, 1, 0], [3, 3, 1, 2], [1, 0, 0, 3]])      # gather index for (3, 4)
G0 = np.array([[0, 2, 1], [2, 1, 0]])                    # smaller than (3, 4), dim 0
IDX = np.array([2, 0, 2])


def _np_scatter_add(x, dim, index, src):
    out = x.copy()
    for pos in np.ndindex(index.shape):
        target = list(pos)
        target[dim] = index[pos]
        out[tuple(target)] += src[pos]
    return out


SC = np.array([[1, 3], [0, 2], [2, 1]])        # a scatter index, no duplicate per row


def _np_scatter(x, dim, index, src):
    out = x.copy()
    for pos in np.ndindex(index.shape):
        target = list(pos)
        target[dim] = index[pos]
        out[tuple(target)] = src[pos]
    return out


def _np_index_fill(x):
    out = x.copy()
    out[:, IDX] = -1.5
    return out


def _np_index_add(x, idx, src):
    out = x.copy()
    np.add.at(out, idx, src)
    return out


INDEXING = [
    S("getitem_basic", lambda x: x[1:3, ::2], lambda x: x[1:3, ::2], (((3, 4),), ((4, 5),)),
      node="Index", public=getitem),
    S("getitem_int_neg", lambda x: x[-1], lambda x: x[-1], M),
    S("getitem_none_ellipsis", lambda x: x[None, ..., 1], lambda x: x[None, ..., 1], M),
    S("getitem_mixed", lambda x: x[0, -2:, None], lambda x: x[0, -2:, None], (((2, 3, 4),),)),
    S("getitem_step_offset", lambda x: x[1::3], lambda x: x[1::3], (((8,),),)),
    S("getitem_empty_slice", lambda x: x[3:1], lambda x: x[3:1], (((4, 2),),)),
    S("getitem_array", lambda x: x[[0, 2, 2]], lambda x: x[[0, 2, 2]], (((3, 4),), ((3,),))),
    S("getitem_array_neg", lambda x: x[:, np.array([-1, 0])], lambda x: x[:, [-1, 0]], M),
    S("getitem_two_arrays", lambda x: x[[0, 1], [3, 1]], lambda x: x[[0, 1], [3, 1]],
      (((3, 4),),)),
    S("getitem_arrays_adjacent", lambda x: x[:, [0, 1], [1, 2]],
      lambda x: x[:, [0, 1], [1, 2]], (((2, 3, 4),),)),
    S("getitem_arrays_apart", lambda x: x[[1, 0], :, [2, 3]],
      lambda x: x[[1, 0], :, [2, 3]], (((2, 3, 4),),)),
    S("getitem_array_2d", lambda x: x[np.array([[0, 1], [2, 2]])],
      lambda x: x[np.array([[0, 1], [2, 2]])], (((3, 4),), ((3, 2, 2),))),
    S("gather", lambda x: gj.gather(x, 1, I2), lambda x: np.take_along_axis(x, I2, 1),
      (((3, 4),),), node="Gather", public=gj.gather),
    S("gather_dim0_small", lambda x: x.gather(0, G0), lambda x: x[G0, np.arange(3)],
      (((3, 4),),)),
    S("take_along_dim", lambda x: gj.take_along_dim(x, I2[:, :1], 1),
      lambda x: np.take_along_axis(x, I2[:, :1], 1), (((3, 4),),)),
    S("index_select", lambda x: gj.index_select(x, 0, IDX), lambda x: x[IDX], (((3, 4),),),
      node="IndexSelect", public=gj.index_select),
    S("index_add", lambda x, s: gj.index_add(x, 0, IDX, s),
      lambda x, s: _np_index_add(x, IDX, s), (((4, 2), (3, 2)),), node="IndexAdd",
      public=gj.index_add),
    S("index_add_alpha", lambda x, s: x.index_add(1, IDX, s, alpha=2.0),
      lambda x, s: np.swapaxes(_np_index_add(np.swapaxes(x, 0, 1), IDX, 2 * s.T), 0, 1),
      (((2, 4), (2, 3)),)),
    S("scatter_add", lambda x, s: gj.scatter_add(x, 1, I2[:, :2], s),
      lambda x, s: _np_scatter_add(x, 1, I2[:, :2], s[:, :2]), (((3, 4), (3, 3)),),
      node="ScatterAdd", public=gj.scatter_add),
    S("scatter", lambda x, s: gj.scatter(x, 1, SC, s),
      lambda x, s: _np_scatter(x, 1, SC, s[:, :2]), (((3, 4), (3, 3)),), node="Scatter",
      public=gj.scatter),
    S("scatter_value", lambda x: x.scatter(1, SC[:2], 2.5),
      lambda x: _np_scatter(x, 1, SC[:2], np.full((2, 2), 2.5, x.dtype)), (((3, 4),),)),
    S("index_fill", lambda x: gj.index_fill(x, 1, IDX, -1.5), lambda x: _np_index_fill(x),
      (((3, 4),),), node="IndexFill", public=gj.index_fill),
    S("unfold", lambda x: gj.unfold(x, 1, 2, 1),
      lambda x: np.lib.stride_tricks.sliding_window_view(x, 2, axis=1), (((3, 4),),),
      node="Unfold", public=gj.unfold),
    S("select", lambda x: gj.select(x, 1, -1), lambda x: x[:, -1], (((3, 4),),),
      public=gj.select),
]

# NumPy spellings (tracer/ops/numpy_spellings.py): the NumPy forms of the ops above
NUMPY_SPELLINGS = [
    S("dot_numpy", gj.dot, np.dot, (((3, 4), (4, 5)), ((2, 3, 4), (5, 4, 2)), ((), (3,)),
                                    ((2, 3, 4), (4,)))),
    S("transpose_numpy", gj.transpose, np.transpose, (((),), ((3,),), ((3, 4),), ((2, 3, 4),))),
    S("swapaxes_numpy", lambda x: gj.swapaxes(x, 0, -1), lambda x: np.swapaxes(x, 0, -1),
      (((2, 3, 4),),)),
    S("transpose_axes", lambda x: gj.transpose(x, axes=(1, 2, 0)),
      lambda x: np.transpose(x, (1, 2, 0)), (((2, 3, 4),),)),
    S("split_axis", lambda x: tuple(gj.split(x, [1, 4], axis=1)),
      lambda x: tuple(np.split(x, [1, 4], axis=1)), (((2, 5),),)),
    S("tensordot_axes", lambda x, y: gj.tensordot(x, y, axes=([1], [0])),
      lambda x, y: np.tensordot(x, y, axes=([1], [0])), (((3, 4), (4, 2)),)),
    S("take_along_axis", lambda x: gj.take_along_axis(x, I2[:, :2], axis=1),
      lambda x: np.take_along_axis(x, I2[:, :2], axis=1), (((3, 4),),)),
    # a round trip through float64 (keeps the float32 row float32); test_numpy_spellings.py
    # checks the conversions themselves
    S("astype", lambda x: gj.astype(gj.astype(x, np.float64), x.dtype), lambda x: x),
]

STRUCT_SPECS = (LINALG + SHAPE + INDEXING + STRUCTURAL + CUMULATIVE + SORTING + COUNTING
                + JAX_NN + NUMPY_SPELLINGS)
