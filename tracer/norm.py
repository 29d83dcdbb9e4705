"""torch.norm / Tensor.norm (PyTorch's older spelling): p = 'fro' or a number is the vector
norm over dim (all elements when None), 'nuc' the nuclear matrix norm; built on
tracer/linalg/norms.py."""
from __future__ import annotations

from tracer.linalg.norms import matrix_norm, vector_norm

__all__ = ["norm"]


def norm(input, p="fro", dim=None, keepdim: bool = False, out=None, dtype=None):
    if p == "nuc":
        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim)
    return vector_norm(input, 2 if p == "fro" or p is None else p, dim, keepdim)
