"""Compiled native code against the reference interpreter, for every op: the forward
function and its VJP (forward and adjoint fused into one Function), in f64 and f32.

With GRADJIT_BACKEND=interpret the runtime itself interprets, so this is then a check of the
pipeline's plumbing; run the suite both ways."""
from __future__ import annotations

import numpy as np
import pytest

from ir.autodiff import vjp
from ir.core import is_float
from ir.interpret import interpret
from tests.tracer.specs_logic import LOGIC
from tests.tracer.specs_math import ELEMENTWISE, NEURAL, REDUCTIONS
from tests.tracer.specs_struct import STRUCT_SPECS
from tests.tracer.tracing import trace_on
from tracer.pipeline import compile_function

ALL_SPECS = ELEMENTWISE + REDUCTIONS + NEURAL + STRUCT_SPECS + LOGIC


def _cotangents(fn, rng, dtype):
    return [rng.standard_normal(r.shape).astype(dtype) for r in fn.results if is_float(r.dtype)]


def _check(fn, args, rtol, atol):
    want = interpret(fn, *args)
    got = compile_function(fn)(*args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=str(fn))


# f32 matters where native code approximates math (vectorised exp/log/tanh...), not for the
# data movement of shape and indexing ops
CASES = ([pytest.param(s, np.float64, 1e-12, 1e-13, id=f"{s.name}-f64") for s in ALL_SPECS]
         + [pytest.param(s, np.float32, 2e-5, 1e-6, id=f"{s.name}-f32")
            for s in ELEMENTWISE + REDUCTIONS + NEURAL])


@pytest.mark.parametrize("spec,dtype,rtol,atol", CASES)
def test_compiled_matches_interpreter(spec, dtype, rtol, atol):
    rng = np.random.default_rng(6)
    args = spec.sample(spec.shapes[-1], rng, dtype)
    fn, full = trace_on(spec.fn, args)
    if spec.grad:
        fn, full = vjp(fn), full + _cotangents(fn, rng, dtype)
    _check(fn, full, rtol, atol)
