"""torch.linalg (and jax.numpy.linalg) for gradjit: solve, inv, det, slogdet, cholesky,
solve_triangular, qr, eigh, svd, norm, vector_norm, matrix_norm, pinv, lstsq, cross,
matrix_power, ... (tracer/linalg)."""
from tracer.linalg import *  # noqa: F401,F403
from tracer.linalg import __all__  # noqa: F401

from gradjit._missing import missing_names

__getattr__ = missing_names("torch.linalg", __name__)
