"""Glue (the entry, the top-level body, a parallel nest's light dispatch, parallel_for) is
compiled without optimisation (codegen.loops.mark_glue); the loops keep
the pipeline. Which functions are glue, and that marking them changes no bit."""
import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradjit as gj
import runtime
from codegen import loops
from ir.interpret import interpret
from runtime import engine


def _functions(llvm_ir: str) -> dict:
    """{function name without the program's prefix: whether it is optnone}."""
    out = {}
    for line in llvm_ir.splitlines():
        if line.startswith("define"):
            name = line.split("@", 1)[1].split("(", 1)[0].strip('"')
            short = name.split(".", 1)[1] if "." in name else "entry"
            out[short] = "optnone" in line.split(")")[-1]
    return out


def chain(x, w, b):
    return (gj.tanh(x * w + b) ** 2 * 0.5 + gj.exp(-x * x)).sum()


def test_the_chain_glue_is_unoptimised_and_its_loops_are_not():
    x = np.ones(10 ** 6, np.float32)
    text = gj.jit(gj.value_and_grad(chain, argnums=(0, 1, 2))).lower(x, x, x).llvm_ir
    fns = _functions(text)
    assert fns == {"entry": True, "body": True, "body.s0": True, "body.s0.task": False,
                   "parallel_for": True, "body.s0.rows": False, "cascade.float": False}
    rows = next(line for line in text.splitlines()
                if line.startswith("define") and '.rows"' in line)
    assert "alwaysinline" in rows.split(")")[-1]      # inlined before the pipeline runs


def test_a_dispatch_with_long_combining_loops_stays_optimised():
    x = np.ones((400, 5000), np.float32)        # 5000 column sums per task to combine
    fns = _functions(gj.jit(lambda x: gj.exp(x * 0.1).sum(axis=0)).lower(x).llvm_ir)
    assert fns["body.s0"] is False and fns["body.s0.task"] is False
    assert fns["body.s0.rows"] is False


def test_a_nest_without_threads_is_not_glue():
    x = np.ones((64, 64), np.float32)
    fns = _functions(gj.jit(lambda x: gj.exp(x * 0.1).sum(axis=0)).lower(x).llvm_ir)
    assert fns["body.s0"] is False and fns["body"] is True and fns["entry"] is True


def _programs():
    return {"sum": lambda x: (gj.tanh(x) * 2.0 + gj.exp(-x * x)).sum(),
            "rows": lambda x: gj.exp(x * 0.1).sum(axis=-1),
            "cols": lambda x: gj.sin(x).sum(axis=0),
            "max": lambda x: gj.exp(x * 0.5).max(axis=0),
            "grad": gj.grad(lambda x: (gj.tanh(x) ** 2).sum())}


def _run_fresh(f, x):
    runtime.clear_cache()
    engine.fresh_execution_engine()
    return np.asarray(gj.jit(f)(x))


@contextlib.contextmanager
def _glue(attributes):
    saved = loops.GLUE_ATTRIBUTES
    loops.GLUE_ATTRIBUTES = attributes
    try:
        yield
    finally:
        loops.GLUE_ATTRIBUTES = saved
        runtime.clear_cache()


@pytest.fixture
def no_disk_cache(gradjit_env):
    gradjit_env("GRADJIT_DISK_CACHE", "0")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 3000), cols=st.sampled_from([1, 3, 17, 300]),
       name=st.sampled_from(sorted(_programs())), f64=st.booleans())
def test_marking_glue_changes_no_bit(rows, cols, name, f64, no_disk_cache):
    rng = np.random.default_rng(rows * 7 + cols)
    x = rng.standard_normal((rows, cols)).astype(np.float64 if f64 else np.float32)
    f = _programs()[name]
    with_glue = _run_fresh(f, x)
    with _glue(()):
        without = _run_fresh(f, x)
        assert "optnone" not in gj.jit(f).lower(x).llvm_ir
    assert with_glue.tobytes() == without.tobytes()
    if name != "grad":
        want = np.asarray(interpret(gj.jit(f).lower(x).ir, x)[0])
        np.testing.assert_allclose(with_glue, want, rtol=1e-5 if not f64 else 1e-12, atol=1e-6)
