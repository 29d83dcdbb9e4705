"""Sparse COO tensors (`torch.sparse_coo_tensor`, `Tensor.to_sparse()`), held dense.

A `SparseCooTensor` is a Tensor whose value is the dense equivalent of its entries (the
values summed at their indices), plus the entries themselves: `indices()`, `values()`,
`_nnz()`, `coalesce()` and the printed form are PyTorch's. A matrix product with a dense
matrix (`torch.spmm`, `@` on either side, the `mm`/`matmul` methods) is computed from the
entries when the sparse operand does not require grad (tracer/sparse_products.py: nnz * n
work, not the dense product's); otherwise, and for `torch.mm`/`torch.matmul` called as
functions, `dense + sparse` and `to_dense`, the ops PyTorch defines on a sparse operand
with a dense result read the dense value, so their numbers and gradients are those of the
same program on dense tensors. Any other op also reads the dense value and returns a dense
Tensor where PyTorch returns a sparse one (`s * 2`) or refuses (`s.view(-1)`): the same
values, another layout (docs/compat.md). Graph programs (pytorch/examples gcn and gat)
build their normalised adjacency matrix this way.
"""
from __future__ import annotations

import numpy as np

import tracer.ops as ops
from tracer import creation
from tracer.ops import convert, indexing, shape
from tracer.ops.linalg import mm
from tracer.ops.operands import to_tensor, user_error
from tracer.record import apply, torch_op
from tracer.sparse_products import entry_product
from tracer.tensor import Tensor, tensor_from_array
from tracer.tensor_str import tensor_str

__all__ = ["layout", "strided", "sparse_coo", "sparse_coo_tensor", "spmm"]


class layout:
    """torch.layout: how a tensor's elements are stored (`torch.strided`, `torch.sparse_coo`)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return (_layout_named, (self.name,))


strided = layout("strided")
sparse_coo = layout("sparse_coo")


def _layout_named(name: str) -> layout:
    return {"strided": strided, "sparse_coo": sparse_coo}[name]


class SparseCooTensor(Tensor):
    """A sparse COO tensor: its dense value, and the entries (indices, values) it was made of."""

    is_sparse = True
    layout = sparse_coo

    def indices(self) -> Tensor:
        if not self._coalesced:
            raise user_error(RuntimeError, "Cannot get indices on an uncoalesced tensor, "
                                           "please call .coalesce() first")
        return self._indices()

    def values(self) -> Tensor:
        if not self._coalesced:
            raise user_error(RuntimeError, "Cannot get values on an uncoalesced tensor, "
                                           "please call .coalesce() first")
        return self._values()

    def _indices(self) -> Tensor:
        return creation.tensor(self._index_array)

    def _values(self) -> Tensor:
        return self._entry_values

    def _nnz(self) -> int:
        return self._index_array.shape[1]

    def is_coalesced(self) -> bool:
        return self._coalesced

    def sparse_dim(self) -> int:
        return self.ndim

    def dense_dim(self) -> int:
        return 0

    def coalesce(self) -> "SparseCooTensor":
        """Entries sorted by index, duplicates summed (self if already coalesced)."""
        if self._coalesced:
            return self
        flat = _flat_positions(self._index_array, tuple(self.shape))
        unique, inverse = np.unique(flat, return_inverse=True)
        values = indexing.index_add(creation.zeros(len(unique), dtype=self.dtype), 0,
                                    creation.tensor(inverse.reshape(-1)), self._entry_values)
        index = np.array(np.unravel_index(unique, tuple(self.shape)), dtype=np.int64)
        return _sparse(self, index.reshape(self.ndim, -1), values, coalesced=True)

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        entries = np.zeros(tuple(self.shape), dtype=bool)
        entries[tuple(self._index_array)] = True
        dense = _to_dense(self, creation.tensor(entries))
        return dense if dtype is None else convert.to(dense, dtype)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        _check_to_sparse(self, sparse_dim, layout, blocksize, dense_dim)
        return self

    def numpy(self, force: bool = False):
        raise user_error(TypeError, "can't convert Sparse layout tensor to numpy. Use "
                                    "Tensor.to_dense() first.")

    def __matmul__(self, other):
        out = entry_product(self, other, sparse_on_left=True)
        return Tensor.__matmul__(self, other) if out is None else out

    def __rmatmul__(self, other):
        out = entry_product(self, other, sparse_on_left=False)
        return Tensor.__rmatmul__(self, other) if out is None else out

    def mm(self, mat2):
        return spmm(self, mat2)

    def matmul(self, other):
        return self.__matmul__(other)

    def __add__(self, other):
        if isinstance(other, Tensor) and not other.is_sparse:
            raise user_error(RuntimeError, "add(sparse, dense) is not supported. Use "
                                           "add(dense, sparse) instead.")
        return Tensor.__add__(self, other)

    def __repr__(self) -> str:
        index, values = self._index_array, self._entry_values.detach().numpy()
        suffixes = [f"size={tuple(self.shape)}", f"nnz={self._nnz()}"]
        if self.dtype.ir not in ("f32", "i64", "bool"):
            suffixes.append(f"dtype={self.dtype!r}")
        suffixes.append("layout=torch.sparse_coo")
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{type(self.grad_fn).__name__}>")
        elif self.requires_grad:
            suffixes.append("requires_grad=True")
        lines = ["tensor(indices=" + _part(index, 22, False) + ",",
                 "       values=" + _part(values, 21, self.dtype.is_floating_point) + ","]
        tail, line = [], "       "
        for i, suffix in enumerate(suffixes):
            text = suffix + (", " if i + 1 < len(suffixes) else ")")
            if len(line) + len(text) > 80 and line.strip():
                tail.append(line.rstrip())
                line = "       "
            line += text
        return "\n".join(lines + tail + [line])


def _part(a: np.ndarray, indent: int, floating: bool) -> str:
    """indices=/values= of the printed form: empty ones with their size, as PyTorch."""
    if a.size == 0:
        return f"tensor([], size={tuple(a.shape)})"
    return "tensor(" + tensor_str(a, indent, floating) + ")"


def _sparse(dense: Tensor, index: np.ndarray, values: Tensor, coalesced: bool):
    """dense, re-classed as a SparseCooTensor with these entries (dense is a new result)."""
    dense.__class__ = SparseCooTensor
    dense._index_array = index
    dense._entry_values = values
    dense._coalesced = coalesced
    dense._entries_of = (dense._expr, dense._version)   # what the entries are the entries of
    return dense


def _flat_positions(index: np.ndarray, size: tuple) -> np.ndarray:
    """Each entry's position in the row-major dense value."""
    if not index.shape[1] or not index.shape[0]:          # no entries, or a 0-d tensor
        return np.zeros(index.shape[1], np.int64)
    return np.ravel_multi_index(tuple(index), size).astype(np.int64)


@torch_op("SparseCooTensorWithDimsAndTensorsBackward0", saves=(0,))
def _assemble(values: Tensor, positions: Tensor, size: tuple, dtype):
    """The dense value of entries: values summed at their flat positions, reshaped."""
    count = int(np.prod(size, dtype=np.int64))
    flat = indexing.index_add(creation.zeros(count, dtype=dtype), 0, positions,
                              convert.to(values, dtype))
    return shape.reshape(flat, size)


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None,
                      pin_memory=False, requires_grad=False, check_invariants=None,
                      is_coalesced=None) -> SparseCooTensor:
    """A sparse COO tensor with `values[k]` at `indices[:, k]` (duplicates add up). Indices
    are always checked, as PyTorch checks them under check_invariants=True (unchecked, an
    index out of range would make every dense read of the tensor read out of bounds).

    Raises:
        RuntimeError: indices out of range, negative, or not matching the values or size.
        NotImplementedError: values with other than one dimension (hybrid tensors).
    """
    index = indices.detach().numpy() if isinstance(indices, Tensor) else np.asarray(indices)
    values = to_tensor(values)
    if values.ndim != 1:
        raise user_error(NotImplementedError, "gradjit's sparse_coo_tensor takes 1-d values "
                                              "only (no hybrid sparse tensors)")
    if index.ndim != 2:
        raise user_error(RuntimeError, f"indices must be sparse_dim x nnz, but got: "
                                       f"{list(index.shape)}")
    index = index.astype(np.int64)
    if index.shape[1] != values.shape[0]:
        raise user_error(RuntimeError, f"indices and values must have same nnz, but got nnz "
                                       f"from indices: {index.shape[1]}, nnz from values: "
                                       f"{values.shape[0]}")
    size = _size_of(index, size)
    out_dtype = values.dtype if dtype is None else dtype
    if dtype is not None:
        values = convert.to(values, dtype)
    if requires_grad:                  # a leaf (its .grad is dense here, sparse in PyTorch)
        values = values.detach()
    positions = creation.tensor(_flat_positions(index, size))
    dense = _assemble(values, positions, size, out_dtype)
    if requires_grad:
        dense = dense.detach().requires_grad_(True)
    return _sparse(dense, index, values, coalesced=bool(is_coalesced))


def _size_of(index: np.ndarray, size) -> tuple:
    """The given size checked against the indices, or the smallest that holds them."""
    if size is None:
        return tuple(int(m) + 1 if index.shape[1] else 0 for m in
                     (index.max(axis=1) if index.shape[1] else [0] * index.shape[0]))
    size = tuple(int(s) for s in size)
    if len(size) != index.shape[0]:
        raise user_error(RuntimeError, f"'len(size) == sparse_dim + dense_dim' is not "
                                       f"satisfied: len(size) = {len(size)}, sparse_dim = "
                                       f"{index.shape[0]}, dense_dim = 0")
    for d, row in enumerate(index):
        if row.size and row.min() < 0:
            raise user_error(RuntimeError, f"found negative index {row.min()} for dim {d}")
        if row.size and row.max() >= size[d]:
            raise user_error(RuntimeError, f"size is inconsistent with indices: for dim {d}, "
                                           f"size is {size[d]} but found index {row.max()}")
    return size


def _check_to_sparse(x, sparse_dims, layout_, blocksize, dense_dim):
    if layout_ not in (None, sparse_coo) or blocksize is not None:
        raise user_error(NotImplementedError, "gradjit's to_sparse gives the COO layout only")
    if sparse_dims not in (None, x.ndim) or dense_dim not in (None, 0):
        raise user_error(NotImplementedError, "gradjit's to_sparse gives no hybrid tensors "
                                              "(sparse_dim must be the tensor's ndim)")


@torch_op("ToSparseBackward1", saves=())
def _dense_copy(x: Tensor) -> Tensor:
    return apply("reshape", x, shape=x._expr.type.shape)


@torch_op("ToDenseBackward0", saves=())
def _to_dense(x: Tensor, entries: Tensor) -> Tensor:
    """x where it has entries, +0.0 elsewhere: the gradient reaches the entries only, as
    PyTorch's ToDenseBackward0 (masked to the sparsity pattern)."""
    return ops.where(entries, x, creation.zeros_like(x))


def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
    """The sparse COO form of a dense tensor: its nonzero entries (NaN counts as nonzero,
    -0.0 as zero), coalesced; differentiable (the gradient reaches every element)."""
    _check_to_sparse(self, sparse_dim, layout, blocksize, dense_dim)
    data = self.detach().numpy()
    nonzero = np.atleast_1d(data != 0)
    index = np.array(np.nonzero(nonzero), dtype=np.int64)[:self.ndim]
    index = index.reshape(self.ndim, int(nonzero.sum()))        # (0, nnz) for a 0-d tensor
    positions = _flat_positions(index, tuple(self.shape))
    if not self.requires_grad:
        # no history to differentiate: the values read above, realised (a product with the
        # result then reads these arrays, not the ops that computed self, in every program)
        dtype = self._expr.type.dtype
        values = tensor_from_array(data.reshape(-1)[positions], dtype)
        return _sparse(tensor_from_array(data, dtype), index, values, coalesced=True)
    dense = _dense_copy(self)
    values = indexing.index_select(shape.reshape(dense, (-1,)), 0, creation.tensor(positions))
    return _sparse(dense, index, values, coalesced=True)


def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
    """A dense tensor's to_dense(): the tensor itself (converted when dtype is given)."""
    return self if dtype is None or dtype == self.dtype else convert.to(self, dtype)


def spmm(input, mat2) -> Tensor:
    """torch.spmm: the matrix product of a sparse (or dense) and a dense matrix; from the
    entries where tracer/sparse_products.py can (a dense mat2 and a sparse input that does
    not require grad)."""
    if isinstance(input, SparseCooTensor):
        out = entry_product(input, mat2, sparse_on_left=True)
        if out is not None:
            return out
    elif isinstance(mat2, SparseCooTensor):
        out = entry_product(mat2, input, sparse_on_left=False)
        if out is not None:
            return out
    return mm(input, mat2)


def dense_layout(self) -> layout:
    return strided

