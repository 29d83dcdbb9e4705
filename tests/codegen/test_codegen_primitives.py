"""Compiled code equals the reference interpreter for every primitive, dtype and sample shape."""
import numpy as np
import pytest

import runtime
from codegen.vmath import VMATH
from codegen.vmath_gamma import GAMMA, NO_LIBM
from codegen.vmath_special import SPECIAL
from ir.interpret import interpret
from ir.primitives import having
from tests.prim_samples import FLOATS, SAMPLES, sample_args

# the unary primitives lowered through vmath, an intrinsic or libm
# (the special functions C's libm lacks have their vmath body only)
TRANSCENDENTAL = tuple(sorted(having(cost="transcendental", kind="unary") - set(NO_LIBM)))
CASES = [(name, k, dt) for name in sorted(SAMPLES)
         for k, case in enumerate(SAMPLES[name].compiled)
         for dt in case.dtypes]


def tolerance(dtype) -> dict:
    if dtype == np.float32:
        return {"rtol": 2e-5, "atol": 1e-6}
    return {"rtol": 1e-12, "atol": 1e-13}


def assert_same(got, want, label=""):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        msg = f"{label} result {k}"
        assert g.dtype == w.dtype and g.shape == w.shape, msg
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, w, err_msg=msg, **tolerance(g.dtype))
        else:
            np.testing.assert_array_equal(g, w, err_msg=msg)


def run_case(case, fn, exe, seeds=(0, 1)):
    for seed in seeds:
        args = sample_args(case, fn, np.random.default_rng(seed))
        assert_same(exe(*args), interpret(fn, *args), f"{fn.name} seed {seed}")


@pytest.mark.parametrize("name,k,dt", CASES, ids=[f"{n}-{k}-{d}" for n, k, d in CASES])
def test_compiled_matches_interpreter(name, k, dt):
    case = SAMPLES[name].compiled[k]
    fn = case.build(dt)
    run_case(case, fn, runtime.compile(fn, bounds_check=False))


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("name", TRANSCENDENTAL)
def test_transcendental_fallback_without_vmath(name, dt):
    """Lowered without codegen.vmath, intrinsics and libm calls give the same results."""
    case = SAMPLES[name].compiled[0]
    fn = case.build(dt)
    exe = runtime.build_executable(fn, vmath=False)
    assert "fma" not in exe.llvm_ir            # vmath's polynomials are not there
    run_case(case, fn, exe)


FALLBACK_SYMBOL = {"exp": "llvm.exp.f32", "log": "llvm.log.f32", "sin": "llvm.sin.f32",
                   "cos": "llvm.cos.f32", "tan": "tanf", "tanh": "tanhf", "log1p": "log1pf",
                   "expm1": "expm1f", "logistic": "llvm.exp.f32",
                   "erf": "erff"}
FALLBACK_SYMBOL.update({n: n + "f" for n in [*SPECIAL, *GAMMA]})      # C99 libm


@pytest.mark.parametrize("name", TRANSCENDENTAL)
def test_vmath_is_preferred_when_it_has_the_function(name):
    fn = SAMPLES[name].compiled[0].build("f32")
    if name in VMATH or name in SPECIAL or name in GAMMA:
        assert f'@"{FALLBACK_SYMBOL[name]}"' not in runtime.lower(fn).llvm_ir
    assert f'@"{FALLBACK_SYMBOL[name]}"' in runtime.lower(fn, vmath=False).llvm_ir
