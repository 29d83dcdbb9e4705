"""The special functions and the NaN semantics of the select-based ops against PyTorch 2.13:
values and gradients at 0, +-inf, NaN and the domain ends (recorded in
tests/api/recorded/special_ops.json from tests/api/recorded/special_cases.py), eagerly with
autograd, under jit and under jit(grad); plus the Python-level behaviour (allclose's bool,
errors, the NumPy spellings and the Tensor methods)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradjit as gj
from tests.api.recorded.special_cases import cases

RECORDED = json.loads((Path(__file__).parent / "recorded" / "special_ops.json").read_text())
CASES = cases(gj)

# (name, "value" or "grad") -> (the inputs where gradjit differs, why; docs/api.md says so)
DIFFERS = {
    ("logit", "grad"): ({-1.5, -1.0, -0.999, -0.5, 1.5},
                        "finite outside [0, 1], where the value is NaN (PyTorch: NaN)"),
    ("xlogy_other", "grad"): ({0.0}, "d/dy at x = y = 0 is 0 (PyTorch: 0/0 = NaN)"),
    ("digamma", "grad"): ({-3.0, -1.0}, "trigamma at a pole is inf (PyTorch: ~1e32)"),
    ("polygamma1", "grad"): ({-math.inf, math.inf}, "polygamma(2, x) at -inf / inf is NaN / -0 "
                             "(PyTorch: -inf / NaN)"),
}
# PyTorch's trigamma (polygamma(1, x), digamma's derivative) is only ~1e-9 accurate;
# lgamma near its negative roots has an absolute error ~1e-15 (docs/numerics.md)
RTOL = {("digamma", "grad"): 2e-9, ("polygamma1", "value"): 2e-9,
        ("polygamma2", "value"): 2e-9, ("polygamma1", "grad"): 2e-9}
ATOL = {("lgamma", "value"): 1e-14, ("special_gammaln", "value"): 1e-14}


def _close(got, want, rtol=1e-12, atol=1e-300) -> list:
    bad = []
    for i, (g, w) in enumerate(zip(got, want)):
        if math.isnan(w) and math.isnan(g):
            continue
        if g == w or (math.isfinite(w) and abs(g - w) <= rtol * abs(w) + atol):
            continue
        bad.append((i, g, w))
    return bad


def _eager(fn, inputs):
    x = gj.tensor(inputs, dtype=gj.float64, requires_grad=True)
    y = fn(x)
    y.sum().backward()
    return y.tolist(), x.grad.tolist()


def _traced(fn, inputs):
    x = np.array(inputs, dtype=np.float64)
    value = gj.jit(fn)(x).numpy().tolist()
    grad = gj.jit(gj.grad(lambda t: fn(t).sum()))(x).numpy().tolist()
    return value, grad


@pytest.mark.parametrize("front", ["eager", "jit"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_at_edge_points_as_pytorch(name, front):
    inputs, fn = CASES[name]
    rec = RECORDED[name]
    value, grad = (_eager if front == "eager" else _traced)(fn, inputs)
    for what, got in (("value", value), ("grad", grad)):
        want = [float(v) for v in rec[what]]
        skip = DIFFERS.get((name, what), (set(),))[0]
        rtol = RTOL.get((name, what), 4e-15 if what == "value" else 1e-13)
        bad = [(inputs[i], g, w) for i, g, w in _close(got, want, rtol,
                                                       ATOL.get((name, what), 1e-15))
               if inputs[i] not in skip]
        assert not bad, f"{name} {what} ({front}) at [(x, gradjit, PyTorch)]: {bad}"


@pytest.mark.parametrize("key", sorted(DIFFERS))
def test_each_listed_difference_is_still_there(key):
    """A difference that disappears must leave DIFFERS (so the list stays true)."""
    name, what = key
    inputs, fn = CASES[name]
    got = _eager(fn, inputs)[0 if what == "value" else 1]
    want = [float(v) for v in RECORDED[name][what]]
    for x in DIFFERS[key][0]:
        at = [i for i, v in enumerate(inputs) if v == x]
        assert _close([got[i] for i in at], [want[i] for i in at], 1e-12), (
            f"{name} {what} at {x} now matches PyTorch: drop it from DIFFERS")


# ---- Python-level behaviour -------------------------------------------------------------------

def test_allclose_is_a_python_bool_eagerly_and_an_error_under_a_trace():
    a = gj.tensor([1.0, 2.0])
    assert gj.allclose(a, a + 1e-9) is True and gj.allclose(a, a + 1) is False
    assert a.allclose(a) is True
    with pytest.raises(gj.TracerError):
        gj.jit(lambda x: gj.allclose(x, x))(np.ones(2))


@pytest.mark.parametrize("call, exc, text", [
    (lambda: gj.isclose(gj.ones(1), gj.ones(1), rtol=-1), RuntimeError,
     "rtol must be greater than or equal to zero, but got -1"),
    (lambda: gj.polygamma(-1, gj.ones(1)), RuntimeError,
     "polygamma(n, x) does not support negative n."),
    (lambda: gj.heaviside(gj.tensor([1]), gj.tensor([0.5])), RuntimeError,
     "heaviside is not yet implemented for tensors with different dtypes."),
])
def test_errors_say_what_pytorch_says(call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert str(info.value).startswith(text)         # followed by the user's file:line


def test_numpy_spellings_and_tensor_methods_are_the_same_functions():
    x = gj.tensor([0.25, -0.5, 0.75], dtype=gj.float64)
    y = gj.tensor([1.5, 2.0, -0.5], dtype=gj.float64)
    pairs = [(gj.arcsin(x), x.asin()), (gj.arccos(x), x.arccos()), (gj.arctan(x), x.atan()),
             (gj.arcsinh(x), x.asinh()), (gj.arctanh(x), x.atanh()),
             (gj.arctan2(x, y), x.atan2(y)), (gj.special.gammaln(y), y.lgamma()),
             (gj.special.psi(y), y.digamma()), (gj.polygamma(2, y), y.polygamma(2)),
             (gj.lerp(x, y, 0.3), x.lerp(y, 0.3)), (gj.logaddexp(x, y), x.logaddexp(y)),
             (gj.hypot(x, y), x.hypot(y)), (gj.xlogy(x, y), x.xlogy(y)),
             (gj.clip(x, a_min=0, a_max=0.5), x.clip(0, 0.5)), (gj.sinc(x), x.sinc()),
             (gj.special.expit(x), x.sigmoid()), (gj.polygamma(0, y), y.digamma())]
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(gj.acos(x).numpy(), np.arccos(x.numpy()), rtol=1e-15)


@pytest.mark.parametrize("fn", [gj.asin, gj.atan, gj.sinh, gj.log2, gj.exp2, gj.erfc, gj.erfinv,
                                gj.lgamma, gj.digamma, gj.sinc, gj.logit])
def test_float32_is_the_float64_result_rounded(fn):
    x = np.linspace(0.05, 0.95, 37)
    got = fn(gj.tensor(x, dtype=gj.float32))
    assert got.dtype == gj.float32
    want = fn(gj.tensor(x.astype(np.float32).astype(np.float64))).numpy().astype(np.float32)
    np.testing.assert_allclose(got.numpy(), want, rtol=3e-7, atol=1e-7)
    assert fn(gj.tensor([1, 0])).dtype == gj.float32              # integers promote


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_broadcast_binary_ops_against_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    a_shape, b_shape = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2,
                                                                   base_shape=shape)).input_shapes
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    a, b = rng.normal(size=a_shape) * 3, rng.normal(size=b_shape) * 3
    # logaddexp(2) near 0 is max + log1p(.) with cancellation: both it and NumPy are off by a
    # few ulp of the operands there (seed 4215: gradjit 11 ulp of the result, NumPy 40)
    near_zero = 8 * np.finfo(np.float64).eps * max(np.abs(a).max(initial=1.0),
                                                    np.abs(b).max(initial=1.0))
    for fn, ref in ((gj.atan2, np.arctan2), (gj.hypot, np.hypot), (gj.logaddexp, np.logaddexp),
                    (gj.logaddexp2, np.logaddexp2)):
        atol = near_zero if fn in (gj.logaddexp, gj.logaddexp2) else 1e-300
        np.testing.assert_allclose(gj.jit(fn)(a, b).numpy(), ref(a, b), rtol=1e-14, atol=atol)
        np.testing.assert_allclose(fn(gj.tensor(a), gj.tensor(b)).numpy(), ref(a, b),
                                   rtol=1e-14, atol=atol)
