"""gj.linalg: torch.linalg's (and jax.numpy.linalg's) decompositions, solves and norms.

    decomp.py   cholesky qr eigh eigvalsh svd svdvals   (one primitive each: ir/linalg)
    solves.py   solve inv det slogdet solve_triangular triangular_solve matrix_power (via lu)
    leastsq.py  pinv lstsq                              (via svd)
    norms.py    vector_norm matrix_norm norm cross
    extras.py   matrix_rank cond lu_factor lu_solve; eig eigvals (NotImplementedError: complex)
    common.py   argument checks, PyTorch's error texts, LinAlgError, matrix helpers
"""
from tracer.linalg import decomp as _decomp, leastsq as _leastsq, norms as _norms
from tracer.linalg import extras as _extras
from tracer.linalg import solves as _solves
from tracer.linalg.common import LinAlgError
from tracer.linalg.decomp import *       # noqa: F401,F403
from tracer.linalg.extras import *       # noqa: F401,F403
from tracer.linalg.leastsq import *      # noqa: F401,F403
from tracer.linalg.norms import *        # noqa: F401,F403
from tracer.linalg.solves import *       # noqa: F401,F403

__all__ = ["LinAlgError", *_decomp.__all__, *_solves.__all__, *_leastsq.__all__,
           *_norms.__all__, *_extras.__all__]
