"""The IR-level half of the fuzzer: random structured Functions (tests/ir/programs.py, size-0
and size-1 axes, nan/inf/-0.0 among the inputs) compiled, optimized and not, against the
reference interpreter; and tame f64 ones with their VJP and JVP compiled, against the
interpreter and against finite differences to second order (tests/gradcheck.py).

The default suite runs a small budget; `--fuzz N` runs N examples of each.
"""
import numpy as np
from hypothesis import HealthCheck, given, settings

import runtime
from ir.autodiff import jvp, vjp
from ir.interpret import interpret
from ir.passes import optimize
from tests.gradcheck import check_grads
from tests.ir.helpers import sample
from tests.ir.programs import structured_programs


def _budget(request, default):
    n = request.config.getoption("--fuzz")
    return settings(max_examples=n or default, deadline=None, derandomize=not n,
                    database=None, suppress_health_check=list(HealthCheck))


def assert_compiled_matches_interpreter(fn, args, rtol):
    want = interpret(fn, *args)
    for variant in (fn, optimize(fn)):
        got = runtime.compile(variant)(*args)
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            assert g.shape == w.shape and g.dtype == w.dtype, f"result {k}\n{variant}"
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, equal_nan=True,
                                       err_msg=f"result {k}\n{variant}")


def test_random_ir_compiled_matches_interpreter(request):
    @_budget(request, 15)
    @given(structured_programs(max_steps=6))
    def check(fn):
        rtol = 2e-4 if any(p.dtype == "f32" for p in fn.params) else 1e-9
        for special in (False, True):
            args = sample(fn, special)
            if special:
                # inf - inf and 0 * inf: nan either way, but a compiled fma or a reordered
                # sum may turn a huge finite value into inf; compare only where finite
                with np.errstate(all="ignore"):
                    want = interpret(fn, *args)
                if not all(np.all(np.isfinite(w) | np.isnan(w)) for w in want):
                    continue
            with np.errstate(all="ignore"):
                assert_compiled_matches_interpreter(fn, args, rtol)
    check()


def test_random_ir_derivatives_compiled_and_against_finite_differences(request):
    @_budget(request, 8)
    @given(structured_programs(max_steps=5, dtypes=("f64",), tame=True))
    def check(fn):
        args = sample(fn)
        check_grads(fn, args, order=2, rtol=1e-4, atol=1e-6)
        rng = np.random.default_rng(0)
        for derived in (vjp(fn), jvp(fn)):
            extra = [rng.standard_normal(p.type.shape) for p in derived.params[len(args):]]
            assert_compiled_matches_interpreter(derived, args + extra, 1e-9)
    check()
