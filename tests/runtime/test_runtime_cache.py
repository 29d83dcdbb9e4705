"""The compile cache (structural keys), the interpret backend, logging, lowering, the engine."""
import logging

import numpy as np
import pytest

import runtime
from ir.interpret import interpret
from runtime.engine import CompileError
from tests.prim_samples import T, make_fn


def affine(name="f", hint="x", n=4):
    fn = make_fn(name, [T("f32", (n,))] * 2, lambda b, x, y: [b.tanh(b.add(b.mul(x, y), x))])
    fn.params[0].name_hint = hint
    return fn


def test_structurally_identical_functions_compile_once():
    runtime.clear_cache()
    first = runtime.compile(affine(hint="x"))
    second = runtime.compile(affine(hint="renamed"))      # other names, same structure
    assert second is first
    info = runtime.cache_info()
    assert (info["compiles"], info["misses"], info["hits"]) == (1, 1, 1)
    assert info["compile_seconds"] > 0


def test_a_different_shape_or_option_is_a_new_entry():
    runtime.clear_cache()
    runtime.compile(affine(n=4))
    runtime.compile(affine(n=5))
    runtime.compile(affine(n=4), bounds_check=True)
    assert runtime.cache_info()["compiles"] == 3


def test_clear_cache_then_recompile_still_runs():
    fn = affine()
    x = np.linspace(-1, 1, 4).astype(np.float32)
    want = runtime.compile(fn)(x, x)
    runtime.clear_cache()
    assert runtime.cache_info()["compiles"] == 0
    np.testing.assert_array_equal(runtime.compile(fn)(x, x)[0], want[0])
    assert runtime.cache_info()["compiles"] == 1


def test_interpret_backend_runs_the_reference_interpreter(gradjit_env):
    gradjit_env("GRADJIT_BACKEND", "interpret")
    exe = runtime.compile(affine())
    assert exe.backend == "interpret"
    x = np.linspace(-1, 1, 4).astype(np.float32)
    np.testing.assert_array_equal(exe(x, x)[0], interpret(affine(), x, x)[0])
    with pytest.raises(ValueError, match="shape"):
        exe(x[:3], x)
    gradjit_env("GRADJIT_BACKEND", "native")
    assert runtime.compile(affine()).backend == "native"


def test_unknown_backend_is_an_error(gradjit_env):
    gradjit_env("GRADJIT_BACKEND", "gpu")
    with pytest.raises(ValueError, match="GRADJIT_BACKEND"):
        runtime.compile(affine())


def test_log_reports_miss_compile_time_and_hit(gradjit_env, caplog):
    gradjit_env("GRADJIT_LOG", "1")
    runtime.clear_cache()
    with caplog.at_level(logging.INFO, logger="gradjit"):
        runtime.compile(affine("logged"))
        runtime.compile(affine("logged"))
    text = caplog.text
    assert "cache miss for @logged" in text and "compiled in" in text
    assert "cache hit for @logged" in text


def test_the_memory_cache_keeps_the_most_recently_used_programs(gradjit_env, caplog):
    gradjit_env("GRADJIT_MEMORY_CACHE_SIZE", "3")
    gradjit_env("GRADJIT_LOG", "1")
    runtime.clear_cache()
    sizes = [4, 5, 6, 7, 8]
    with caplog.at_level(logging.INFO, logger="gradjit"):
        exes = [runtime.compile(affine(f"n{n}", n=n)) for n in sizes]
        assert runtime.compile(affine(n=6)) is exes[2]         # used again: now the newest
        runtime.compile(affine(n=9))                           # drops 7, the oldest one left
    info = runtime.cache_info()
    assert (info["entries"], info["evictions"], info["compiles"]) == (3, 3, 6)
    assert "dropped @n4" in caplog.text and "dropped @n7" in caplog.text
    assert "dropped @n6" not in caplog.text
    assert runtime.compile(affine(n=6)) is exes[2] and runtime.compile(affine(n=8)) is exes[4]
    assert runtime.cache_info()["compiles"] == 6


def test_a_dropped_program_is_compiled_again_and_runs_correctly(gradjit_env):
    gradjit_env("GRADJIT_MEMORY_CACHE_SIZE", "2")
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    runtime.clear_cache()
    fn = affine(n=7)
    x = np.linspace(-1, 1, 7).astype(np.float32)
    first = runtime.compile(fn)
    for n in (3, 4):
        runtime.compile(affine(n=n))
    again = runtime.compile(affine(hint="other", n=7))
    assert again is not first and runtime.cache_info()["compiles"] == 4
    np.testing.assert_allclose(again(x, x)[0], interpret(fn, x, x)[0], rtol=1e-6)
    np.testing.assert_array_equal(again(x, x)[0], first(x, x)[0])


def test_a_loop_over_changing_shapes_stays_within_the_limit(gradjit_env):
    """Issue 10: a batch length that changes every step used to keep every program."""
    import gradjit as gj
    gradjit_env("GRADJIT_MEMORY_CACHE_SIZE", "4")
    runtime.clear_cache()
    w = gj.tensor(np.ones(3, np.float32), requires_grad=True)
    for batch in range(1, 13):
        x = gj.tensor(np.ones((batch, 3), np.float32))
        loss = ((x * w).sum(axis=1) ** 2).mean()
        loss.backward()
        np.testing.assert_allclose(w.grad.numpy(), np.full(3, 6.0, np.float32), rtol=1e-6)
        w.grad = None
        assert runtime.cache_info()["entries"] <= 4
    assert runtime.cache_info()["evictions"] > 0


def test_a_bad_memory_cache_size_names_the_variable(gradjit_env):
    gradjit_env("GRADJIT_MEMORY_CACHE_SIZE", "0")
    runtime.clear_cache()
    with pytest.raises(ValueError, match="GRADJIT_MEMORY_CACHE_SIZE"):
        runtime.compile(affine())


def test_lowered_exposes_ir_and_llvm_before_and_after_optimisation():
    fn = affine(n=64)
    low = runtime.lower(fn)
    assert low.ir is fn
    assert f'define void @"{low.kernel.entry}"' in low.llvm_ir
    opt = low.optimized_llvm_ir
    assert low.kernel.entry in opt and "x float>" in opt           # vectorised for the host
    x = np.linspace(-1, 1, 64).astype(np.float32)
    np.testing.assert_array_equal(low.compile()(x, x)[0], runtime.compile(fn)(x, x)[0])


def test_engine_is_one_per_process_and_names_the_kernel_on_bad_ir():
    engine = runtime.create_execution_engine()
    assert runtime.create_execution_engine() is engine
    assert engine.cpu and engine.triple
    with pytest.raises(CompileError, match="kernel 'broken'"):
        engine.compile(["define void @f( {"], ["f"], "broken")
    bad = ("define void @g(i1 %c) {\nentry:\n  br i1 %c, label %a, label %b\na:\n"
           "  %x = add i32 1, 2\n  br label %b\nb:\n  %y = add i32 %x, 1\n  ret void\n}\n")
    with pytest.raises(CompileError, match="verification failed for kernel 'broken'"):
        engine.compile([bad], ["g"], "broken")


def test_a_module_that_fails_verification_is_disposed_before_its_context(monkeypatch):
    """The error's traceback keeps the module; disposed later by a garbage collection that
    had freed its context first, it crashed the process (seen under hypothesis)."""
    import llvmlite.binding as llvm
    from runtime import engine as engine_module
    parsed, parse = [], llvm.parse_assembly

    def recording(text, context=None):
        parsed.append(parse(text, context))
        return parsed[-1]
    monkeypatch.setattr(engine_module.llvm, "parse_assembly", recording)
    bad = ("define void @h(i1 %c) {\nentry:\n  br i1 %c, label %a, label %b\na:\n"
           "  %x = add i32 1, 2\n  br label %b\nb:\n  %y = add i32 %x, 1\n  ret void\n}\n")
    with pytest.raises(CompileError, match="verification failed"):
        runtime.create_execution_engine().compile([bad], ["h"], "broken")
    assert parsed and all(m.closed for m in parsed)
    good = "define void @ok() {\nentry:\n  ret void\n}\n"
    with pytest.raises(CompileError, match="verification failed"):      # a later text bad
        runtime.create_execution_engine().compile([good, bad], ["ok"], "broken2")
    assert all(m.closed for m in parsed)


def test_kernels_with_and_without_the_blas_have_different_symbols():
    """The engine shares code by symbol, so code that calls the BLAS must be named apart."""
    from codegen import lower_function
    fn = make_fn("mm", [T("f64", (40, 40))] * 2, lambda b, x, y: [
        b.dot_general(x, y, contract=((1,), (0,)), batch=((), ()))])
    ext = runtime.externals()
    if ext.gemm is None:
        pytest.skip("no BLAS found in NumPy")
    with_blas, without = lower_function(fn, externals=ext), lower_function(fn)
    assert with_blas.entry != without.entry
    assert "gradjit_dgemm" in with_blas.llvm_ir and "gemm" not in without.llvm_ir
    assert "gradjit_dgemm" in runtime.lower(fn).llvm_ir
    x = np.arange(1600.0).reshape(40, 40) / 1600
    np.testing.assert_allclose(runtime.compile(fn)(x, x)[0], x @ x, rtol=1e-13)
