"""Products of a sparse COO matrix and a dense one, computed from the entries.

`S @ X` is y[row[k]] += val[k] * X[col[k]] over S's nnz entries: a gather of X's rows, a
product with the values, and a scatter-add into the result (nnz * n work, where the dense
product of tracer/sparse.py's dense value costs m * k * n: gcn's 1,700-node adjacency
matrix). `X @ S` is its transpose. The numbers are the dense product's up to the order of
the additions (each output sums the same nonzero terms; the dense product also adds the
zeros' products, so a NaN or inf in X times an absent entry gives NaN there and a plain sum
here, as PyTorch's sparse product does).

Taken only when S does not require grad (gcn's adjacency matrix): the gradient then
reaches X alone, through the gather and scatter-add (autodiff of the primitives). A sparse
S that requires grad, an S changed in place since it was made (its entries are no longer
its value), a sparse X, or operands that are not two matrices of matching sizes use the
dense product (tracer/sparse.py), which also raises the shape and dtype errors.
"""
from __future__ import annotations

import numpy as np

from tracer.ops.operands import cast, constant, dtype_of, result_type, to_tensor
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array

__all__ = ["entry_product", "STATS"]

# products computed from the entries, and sparse products left to the dense path (tests)
STATS = {"entries": 0, "dense": 0}


def entry_product(sparse, other, sparse_on_left: bool):
    """sparse @ other (or other @ sparse), from the entries; None when the dense product
    must be used (see the module docstring)."""
    dtype = _product_dtype(sparse, other, sparse_on_left)
    if dtype is None:
        STATS["dense"] += 1
        return None
    STATS["entries"] += 1
    rows, cols = _index_tensors(sparse)
    values = cast(sparse._entry_values.detach(), dtype)
    if sparse_on_left:
        return _left_product(rows, cols, values, cast(other, dtype), int(sparse.shape[0]))
    return _right_product(rows, cols, values, cast(other, dtype), int(sparse.shape[1]))


def _product_dtype(sparse, other, sparse_on_left: bool) -> str | None:
    """The product's dtype when it can be computed from the entries, else None."""
    if not (sparse.ndim == 2 and not sparse.requires_grad and isinstance(other, Tensor)
            and not other.is_sparse and other.ndim == 2):
        return None
    if sparse._entries_of != (sparse._expr, sparse._version):
        return None        # changed in place (`s.mul_(2)`): the entries are not its value
    inner = (sparse.shape[1], other.shape[0]) if sparse_on_left else \
        (other.shape[1], sparse.shape[0])
    dtype = result_type(sparse, other)
    return None if inner[0] != inner[1] or dtype == "bool" else dtype


def _index_tensors(sparse) -> tuple[Tensor, Tensor]:
    """S's row and column indices as i64 Tensors, made once per sparse tensor."""
    cached = getattr(sparse, "_row_col", None)
    if cached is None:
        index = np.ascontiguousarray(sparse._index_array, dtype=np.int64)
        cached = (tensor_from_array(index[0].copy(), "i64"),
                  tensor_from_array(index[1].copy(), "i64"))
        sparse._row_col = cached
    return cached


def _scaled_rows(x: Tensor, at: Tensor, values: Tensor) -> Tensor:
    """values[k] * x[at[k], :] for every entry k: (nnz, n)."""
    picked = apply("gather", x, at, axis=0)
    scale = apply("broadcast_in_dim", values, shape=tuple(picked.shape), dims=(0,))
    return apply("mul", picked, scale)


def _sum_into(terms: Tensor, at: Tensor, size: int) -> Tensor:
    """out[at[k], :] += terms[k, :], out (size, n) zeros before."""
    zeros = constant(0, dtype_of(terms), (size, int(terms.shape[1])))
    return apply("scatter_add", zeros, at, terms, axis=0)


@torch_op("Mm", saves=(2, 3))
def _left_product(rows: Tensor, cols: Tensor, values: Tensor, x: Tensor, m: int) -> Tensor:
    """S @ x: out[rows[k]] += values[k] * x[cols[k]]."""
    return _sum_into(_scaled_rows(x, cols, values), rows, m)


@torch_op("Mm", saves=(2, 3))
def _right_product(rows: Tensor, cols: Tensor, values: Tensor, x: Tensor, n: int) -> Tensor:
    """x @ S: out[:, cols[k]] += x[:, rows[k]] * values[k] (the left product of S^T and
    x^T, transposed back)."""
    xt = apply("transpose", to_tensor(x), perm=(1, 0))
    out = _sum_into(_scaled_rows(xt, rows, values), cols, n)
    return apply("transpose", out, perm=(1, 0))
