"""OpSpec: one row of the op table (gradjit function, NumPy reference, shapes, domain).

The tables live in specs_math.py (elementwise, reductions, neural), specs_struct.py
(linear algebra, shape, indexing) and specs_logic.py (comparisons, logical ops, predicates);
ALL_SPECS joins them for the parametrized tests, and test_op_spec_rows.py checks that every
public op has a row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

UNARY_SHAPES = ((),), ((1,),), ((4,),), ((2, 1, 3),), ((3, 4),)
BINARY_SHAPES = (((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3,)),
                 ((1,), (2, 3)))
MATRIX_SHAPES = ((3, 4),), ((2, 3, 4),)


@dataclass
class OpSpec:
    """fn(*tensors) is checked against ref(*arrays) on args drawn from [low, high)."""
    name: str
    fn: Callable
    ref: Callable
    shapes: tuple = UNARY_SHAPES            # one tuple of argument shapes per case
    low: float = -2.0
    high: float = 2.0
    grad: bool = True                       # differentiable (checked against differences)
    public: Callable | None = None          # the gradjit function whose torch_name is checked
    node: str | None = None                 # ... and the name expected
    rtol: float = 1e-7
    lows: tuple = field(default_factory=tuple)   # per-argument domains, overriding low/high

    def sample(self, shapes, rng, dtype=np.float64) -> list[np.ndarray]:
        out = []
        for i, s in enumerate(shapes):
            lo, hi = self.lows[i] if i < len(self.lows) else (self.low, self.high)
            out.append(np.asarray(rng.uniform(lo, hi, s), dtype=dtype))
        return out

    def first_case(self, rng, dtype=np.float64) -> list[np.ndarray]:
        return self.sample(self.shapes[0], rng, dtype)


def cases(specs, which=None):
    """(spec, shapes) pairs for pytest.mark.parametrize, with readable ids."""
    out = []
    for spec in specs:
        for shapes in (spec.shapes if which is None else spec.shapes[:which]):
            out.append((spec, shapes))
    return out


def case_id(value) -> str:
    if isinstance(value, OpSpec):
        return value.name
    return "x".join("-".join(map(str, s)) or "0d" for s in value)


def as_list(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]
