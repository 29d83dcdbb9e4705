"""exp's underflow end through the compiler: below exp_lo the result is selected, exactly +0."""
import numpy as np
import pytest

import gradjit as gj
from codegen import vmath_base

DTYPES = {"f32": np.float32, "f64": np.float64}


def _exp_lo(dt: str) -> float:
    return (vmath_base._F32 if dt == "f32" else vmath_base._F64).exp_lo


@pytest.mark.parametrize("dt", DTYPES)
def test_exp_below_its_underflow_bound_is_exactly_zero(dt):
    """Below exp_lo exp selects +0: those inputs no longer go through an underflowing
    multiply (microcoded on Zen 3: exp of -inf took twice as long as finite inputs)."""
    t = DTYPES[dt]
    lo = t(_exp_lo(dt))
    below = np.array([-np.inf, -1e30, -1e4, np.nextafter(lo, t(-np.inf)), lo - 1] * 4, t)
    got = np.asarray(gj.jit(gj.exp)(below))
    assert np.all(got == 0) and not np.any(np.signbit(got))
    both = np.concatenate([below, -below])
    sig = np.asarray(gj.jit(gj.sigmoid)(both))             # logistic: exp(-|x|) inside
    assert np.array_equal(sig, (both > 0).astype(t))
    assert np.isnan(np.asarray(gj.jit(gj.exp)(np.full(3, np.nan, t)))).all()


def test_exp_just_above_its_underflow_bound_is_within_an_ulp():
    """Every f32 from exp_lo (-106) up to about -76: zeros, denormals and the first normal
    results, as computed before the change (the select only replaces inputs below exp_lo)."""
    lo = np.float32(_exp_lo("f32"))
    bits = np.arange(lo.view(np.int32), lo.view(np.int32) - 4_000_000, -1, dtype=np.int32)
    x = bits.view(np.float32)
    got = np.asarray(gj.jit(gj.exp)(x)).astype(np.float64)
    want = np.exp(x.astype(np.float64))
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(got - want) <= ulp)
