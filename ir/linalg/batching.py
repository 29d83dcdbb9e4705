"""Batching rules of the linear-algebra primitives: each already maps over leading batch
axes, so the vmapped axis (always first) is one more of them; an unbatched operand of
triangular_solve is broadcast along it."""
from __future__ import annotations


def _rule(name):
    def rule(b, n, xs, flags, /, **params):
        from ir.batching import _emit, bat
        out = _emit(b, name, *(bat(b, n, x, f) for x, f in zip(xs, flags)), **params)
        return [(v, True) for v in out]
    return rule


BATCH_RULES = {name: _rule(name)
               for name in ("cholesky", "triangular_solve", "lu", "qr", "eigh", "svd")}
