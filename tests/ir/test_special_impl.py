"""The interpreter's references of erfc, erfinv, lgamma, digamma and polygamma (the oracle of
the compiled code) against mpmath values recorded in tests/codegen/special_reference.py."""
import numpy as np
import pytest

from ir.special_impl import IMPL_RULES
from tests.codegen.special_reference import REFERENCE

# relative tolerance, and the absolute one near roots (lgamma, digamma, the reflections)
TOL = {"erfc": (4e-16, 0), "erfinv": (5e-15, 0), "lgamma": (4e-16, 3e-15),
       "digamma": (4e-16, 1e-15), "polygamma1": (1e-15, 0), "polygamma2": (1e-15, 1e-14),
       "polygamma3": (1e-15, 0)}


def _rule(name):
    if name.startswith("polygamma"):
        n = int(name[-1])
        return lambda x: IMPL_RULES["polygamma"](x, n=n)
    return IMPL_RULES[name]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_agrees_with_mpmath(name):
    x = np.array([p[0] for p in REFERENCE[name]])
    want = np.array([p[1] for p in REFERENCE[name]])
    got = _rule(name)(x)
    rtol, atol = TOL[name]
    ulp = np.spacing(np.abs(want))
    with np.errstate(invalid="ignore"):
        ok = (got == want) | (np.abs(got - want) <= np.maximum(4 * ulp, rtol * np.abs(want))
                              + atol * (1 + np.abs(x)))
    assert ok.all(), list(zip(x[~ok], got[~ok], want[~ok]))[:5]


def test_keeps_the_float32_dtype():
    for name in IMPL_RULES:
        out = _rule(name if name != "polygamma" else "polygamma1")(np.float32([0.25, 0.5]))
        assert out.dtype == np.float32, name
