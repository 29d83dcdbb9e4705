"""Bounds-check mode over many programs: random structured programs (elementwise, reductions,
slices, pads, concatenations, products, scans) give the same bits with and without the
checks, and the plain mode never goes near the checking code (no CheckedBuilder is made,
no scratch slot emitted), so its code is what it was before bounds mode covered the
hand-addressed emitters. Run with GRADJIT_TARGET_CPU=haswell too (AVX2 code).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import runtime
from codegen import bounds
from codegen.emit import lower_function
from tests.ir.programs import structured_programs
from tests.prim_samples import SAMPLES

NP = {"f32": np.float32, "f64": np.float64}


def _args(fn, seed: int):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=p.type.shape).astype(NP[p.type.dtype]) for p in fn.params]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(fn=structured_programs(max_steps=8))
def test_random_programs_give_the_same_bits_checked(fn):
    args = _args(fn, len(fn.body))
    checked = runtime.build_executable(fn, bounds_check=True)
    assert checked.bounds_check
    got = checked(*[a.copy() for a in args])
    want = runtime.build_executable(fn)(*args)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


HAND_ADDRESSED = ("cholesky", "lu", "qr", "eigh", "svd", "triangular_solve", "sort", "scan",
                  "while", "cond", "debug_print", "custom_vjp_call", "custom_jvp_call")
CASES = [(name, k, dtype) for name in sorted(SAMPLES)
         for k, case in enumerate(SAMPLES[name].compiled) for dtype in case.dtypes]


@pytest.mark.parametrize("name,k,dtype", CASES, ids=[f"{n}-{k}-{d}" for n, k, d in CASES])
def test_the_plain_mode_makes_no_checked_builder(name, k, dtype):
    """Every sample program lowered without bounds checks: no CheckedBuilder, no scratch
    slot; with them, the hand-addressed emitters (LAPACK, sort, control flow, lanes) do
    make one."""
    fn = SAMPLES[name].compiled[k].build(dtype)
    before = bounds.STATS["builders"]
    plain = lower_function(fn, bounds_check=False, externals=runtime.externals(fn))
    assert bounds.STATS["builders"] == before
    assert "bad_access" not in plain.llvm_ir and "calloc" not in plain.llvm_ir
    lower_function(fn, bounds_check=True, externals=runtime.externals(fn))
    if name in HAND_ADDRESSED:
        assert bounds.STATS["builders"] > before
