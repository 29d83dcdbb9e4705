"""Every public op of tracer.ops has a row in the op tables (specs_*.py), or a reason here.

A row is what puts an op through the value, float32, imperative, compiled and gradient tests,
so an op added to `tracer.ops.__all__` without one fails here.
"""
from __future__ import annotations

import pytest

import tracer.ops as ops
from tests.tracer.specs_logic import LOGIC
from tests.tracer.specs_math import ELEMENTWISE, NEURAL, REDUCTIONS
from tests.tracer.specs_struct import STRUCT_SPECS

ALL_SPECS = ELEMENTWISE + REDUCTIONS + NEURAL + STRUCT_SPECS + LOGIC

# ops that return no tensor, so a row (traced, compared with NumPy) does not fit them
EXEMPT = {
    "equal": "returns a Python bool (torch.equal), not a tensor; tests/api/test_numerics.py",
    "result_type": "returns a dtype name; test_op_dtypes.py checks it against torch's table",
    **{name: "data-dependent shape, eager only (a row traces it); tests/api/test_eager_only.py"
       for name in ("nonzero", "argwhere", "unique", "masked_select", "bincount")},
}


def _op_of_row(name: str):
    """The op a row tests: its name, or its name with variant suffixes cut (`sum_dim`,
    `einsum[ij,jk->ik]`, `log_softmax_0`); None for operator rows (`rdiv`, `getitem_basic`)."""
    name = name.split("[")[0]
    while name:
        if name in ops.__all__:
            return getattr(ops, name)
        name = name.rpartition("_")[0]
    return None


def _covered() -> list:
    """The op functions that some row calls, found by the row's name or its functions."""
    out = []
    for spec in ALL_SPECS:
        out += [_op_of_row(spec.name), spec.fn, spec.public]
    return out


COVERED = _covered()


@pytest.mark.parametrize("name", sorted(ops.__all__))
def test_public_op_has_a_spec_row(name):
    if name in EXEMPT:
        return
    op = getattr(ops, name)          # aliases (subtract, concat, ...) are the same function
    assert any(op is c for c in COVERED), (
        f"tracer.ops.{name} has no row in tests/tracer/specs_*.py: add one (or an EXEMPT "
        "entry with the reason in tests/tracer/test_op_spec_rows.py)")


def test_exemptions_name_existing_ops():
    assert set(EXEMPT) <= set(ops.__all__), "an exemption names an op that no longer exists"
