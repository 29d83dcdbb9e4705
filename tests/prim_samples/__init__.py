"""One sample row per primitive, used by every per-primitive test.

SAMPLES[name] is a Row: `grad`, the cases its derivatives are checked on
(tests/ir/autodiff), and `compiled`, the cases its compiled code is checked on against the
reference interpreter (tests/codegen, tests/runtime). The rows live by family in
elementwise.py, structural.py, control.py and linalg.py; a floating-point unary primitive is
one line of elementwise.FLOAT_UNARY. tests/test_rules_complete.py checks that every primitive has a
row with both kinds of case.
"""
from __future__ import annotations

from tests.prim_samples import control, cumulative, custom, elementwise, linalg, structural
from tests.prim_samples.cases import (ALL, FLOATS, INTS, NUMERIC, CompiledCase, GradCase, Row,
                                      T, make_fn, sample_args, sample_array)

__all__ = ["SAMPLES", "Row", "GradCase", "CompiledCase", "grad_cases_of", "T", "make_fn",
           "sample_args", "sample_array", "FLOATS", "INTS", "NUMERIC", "ALL"]


def _merge(*tables) -> dict[str, Row]:
    merged: dict[str, Row] = {}
    for table in tables:
        twice = sorted(set(merged) & set(table))
        assert not twice, f"primitives with two sample rows: {twice}"
        merged.update(table)
    return merged


SAMPLES: dict[str, Row] = _merge(elementwise.ROWS, structural.ROWS, control.ROWS,
                                 linalg.ROWS, custom.ROWS, cumulative.ROWS)


def grad_cases_of(name: str) -> list[GradCase]:
    """The derivative cases of primitive name (an assertion naming the file when it has none)."""
    row = SAMPLES.get(name)
    assert row is not None and row.grad, (f"no derivative-test case for primitive '{name}': "
                                          "add a row to tests/prim_samples")
    return row.grad
