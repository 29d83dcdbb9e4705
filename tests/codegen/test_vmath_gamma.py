"""codegen.vmath_gamma: erfc, erfinv, lgamma, digamma and polygamma against recorded mpmath
values (tests/codegen/special_reference.py), their special values as PyTorch 2.13 gives them,
f32 as the f64 result rounded once, and loops that vectorise without calls."""
import math

import numpy as np
import pytest

from codegen.vmath_gamma import GAMMA, polygamma
from tests.codegen import test_vmath_special as harness
from tests.codegen.special_reference import REFERENCE

FUNCS = {"erfc": GAMMA["erfc"], "erfinv": GAMMA["erfinv"], "lgamma": GAMMA["lgamma"],
         "digamma": GAMMA["digamma"], "polygamma1": polygamma(1), "polygamma2": polygamma(2),
         "polygamma3": polygamma(3)}

# f64: max ulp, and the absolute error allowed near a root (where the recurrences and the
# reflection subtract nearly equal terms; docs/numerics.md), relative to 1 + |x|
BOUNDS = {"erfc": (3.5, 0.0), "erfinv": (2.5, 0.0), "lgamma": (4.0, 3e-15),
          "digamma": (3.0, 4e-16), "polygamma1": (4.5, 0.0), "polygamma2": (4.0, 5e-15),
          "polygamma3": (6.0, 0.0)}


@pytest.fixture(scope="module")
def kernels():
    saved = harness.SPECIAL
    harness.SPECIAL = FUNCS
    try:
        return harness.Kernels()
    finally:
        harness.SPECIAL = saved


def test_against_recorded_mpmath_values(kernels):
    rows, failures = [], []
    for name, pairs in REFERENCE.items():
        x = np.array([p[0] for p in pairs])
        want = np.array([p[1] for p in pairs])
        got = kernels(name, "f64", x)
        ulps, abs_tol = BOUNDS[name]
        with np.errstate(all="ignore"):
            err = np.abs(got - want)
            in_ulps = err / np.spacing(np.abs(want))
            ok = (in_ulps <= ulps) | (err <= abs_tol * (1 + np.abs(x))) | (got == want)
        worst = int(np.argmax(np.where(ok, 0, in_ulps) if not ok.all() else in_ulps))
        rows.append(f"{name:10s} max {in_ulps.max():.2f} ulp at x={x[worst]!r}")
        if not ok.all():
            failures.append(f"{name}: {list(zip(x[~ok], got[~ok], want[~ok]))[:5]}")
    print("\n" + "\n".join(rows))
    assert not failures, "\n".join(failures)


def test_f32_is_the_f64_result_rounded_once(kernels):
    rng = np.random.default_rng(3)
    for name in FUNCS:
        x = rng.uniform(-1 if name == "erfinv" else -8, 1 if name == "erfinv" else 30, 5000)
        x = x.astype(np.float32)
        with np.errstate(all="ignore"):
            want = kernels(name, "f64", x.astype(np.float64)).astype(np.float32)
        got = kernels(name, "f32", x)
        np.testing.assert_array_equal(got, want, err_msg=name)


INF, NAN = math.inf, math.nan
# recorded from PyTorch 2.13 (torch.erfc / erfinv / lgamma / digamma / polygamma, float64)
SPECIAL_VALUES = [
    ("erfc", 0.0, 1.0), ("erfc", -0.0, 1.0), ("erfc", INF, 0.0), ("erfc", -INF, 2.0),
    ("erfc", NAN, NAN), ("erfc", 1e-300, 1.0), ("erfc", 30.0, 0.0),
    ("erfinv", 0.0, 0.0), ("erfinv", -0.0, -0.0), ("erfinv", 1.0, INF), ("erfinv", -1.0, -INF),
    ("erfinv", 1.5, NAN), ("erfinv", -INF, NAN), ("erfinv", NAN, NAN),
    ("erfinv", 1e-300, 8.86226925452758e-301),
    ("lgamma", 0.0, INF), ("lgamma", -0.0, INF), ("lgamma", -1.0, INF), ("lgamma", -2.0, INF),
    ("lgamma", INF, INF), ("lgamma", -INF, INF), ("lgamma", NAN, NAN), ("lgamma", 1.0, 0.0),
    ("lgamma", 2.0, 0.0), ("lgamma", 1e-300, 690.7755278982137),
    ("digamma", 0.0, -INF), ("digamma", -0.0, INF), ("digamma", -1.0, NAN),
    ("digamma", INF, INF), ("digamma", -INF, NAN), ("digamma", NAN, NAN),
    ("digamma", 1.0, -0.5772156649015329),
    ("polygamma1", 0.0, INF), ("polygamma1", INF, 0.0), ("polygamma1", NAN, NAN),
    ("polygamma2", 0.0, -INF), ("polygamma3", 0.0, INF),
]


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_special_values(kernels, dt):
    wrong = []
    for name, x, want in SPECIAL_VALUES:
        if dt == "f32" and float(np.float32(x)) != x:
            continue
        got = kernels(name, dt, np.array([x]))[0]
        want = harness.DTYPES[dt](want)
        close = got == want or (np.isfinite(want) and abs(got - want) <= 8 * np.spacing(abs(want)))
        if not ((np.isnan(got) and np.isnan(want)) or (close and
                                                      np.signbit(got) == np.signbit(want))):
            wrong.append(f"{name}({x}) = {got!r}, want {want!r}")
    assert not wrong, "\n".join(wrong)


def test_loops_vectorise_without_calls(kernels):
    text = str(kernels.optimised)
    for name in FUNCS:
        body = text.split(f"@{name}_f64(")[1].split("\n}")[0]
        assert "x double>" in body, name
        calls = [c.split("(")[0] for c in body.split("call ")[1:]]
        assert all("@llvm." in c for c in calls), (name, calls)
