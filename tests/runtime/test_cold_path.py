"""What a first compile no longer repeats: the BLAS question for a program without a dot,
printing the program's canonical text more than once per build, and linking a runtime
module's fresh object code into a second MCJIT (counters, never timings)."""
import ctypes
import logging

import llvmlite.binding as llvm
import numpy as np
import pytest

import runtime
from ir import printer
from ir.interpret import interpret
from runtime import compile_cache, disk_cache
from tests.codegen.test_perf_gemm import dot_fn
from tests.prim_samples import T, make_fn


@pytest.fixture
def cache_dir(tmp_path, gradjit_env):
    gradjit_env("GRADJIT_CACHE_DIR", str(tmp_path / "objects"))
    gradjit_env("GRADJIT_SECRET_FILE", str(tmp_path / "config" / "secret"))
    gradjit_env("GRADJIT_DISK_CACHE", None)
    runtime.clear_cache()
    yield tmp_path
    runtime.clear_cache()


def tanh_sum(n: int, name: str = "tanh_sum"):
    return make_fn(name, [T("f32", (n,)), T("f32", (n,))],
                   lambda b, x, w: [b.reduce_sum(b.tanh(b.mul(x, w)), axes=(0,))])


def test_a_program_without_a_dot_gets_no_natives_and_one_with_a_dot_does():
    from runtime import blas
    assert runtime.externals(tanh_sum(8)).gemm is None
    assert runtime.externals(tanh_sum(8)).lapack is None
    with_dot = runtime.externals(dot_fn((64, 64), (64, 64), ((1,), (0,))))
    assert (with_dot.gemm is not None) == blas.available()


def test_a_dot_free_program_compiled_without_natives_matches_the_interpreter(cache_dir):
    fn = tanh_sum(1003)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 1003)).astype(np.float32)
    got, = runtime.compile(fn)(x, w)
    want, = interpret(fn, x, w)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def _count_prints(monkeypatch) -> list:
    calls = []
    real = printer.print_function

    def counting(fn, *a, **k):
        calls.append(fn)
        return real(fn, *a, **k)
    for module in (compile_cache, __import__("codegen.emit", fromlist=["emit"])):
        monkeypatch.setattr(module, "print_function", counting)
    return calls


def test_a_build_prints_the_program_once_for_its_keys_entry_and_symbol(cache_dir, monkeypatch):
    calls = _count_prints(monkeypatch)
    fn = tanh_sum(37, "printed_once")
    exe = runtime.compile(fn)
    assert len(calls) == 1          # memory key; the disk entry's key and codegen reuse it
    x = np.linspace(-1, 1, 37).astype(np.float32)
    np.testing.assert_allclose(exe(x, x)[0], interpret(fn, x, x)[0], rtol=1e-5)


def test_the_reused_text_is_the_printed_text_and_is_not_reused_outside_a_build(cache_dir):
    fn = tanh_sum(5)
    text = printer.print_function(fn, locs=False, hints=False)
    assert compile_cache.canonical_text(fn) == text
    assert getattr(compile_cache._building, "memo", None) is None
    runtime.compile(fn)
    assert getattr(compile_cache._building, "memo", None) is None   # cleared after a build
    other = tanh_sum(6)
    assert compile_cache.canonical_text(other) == printer.print_function(other, locs=False,
                                                                         hints=False)


_TEXT = """define i64 @gj_test_seven() {
  ret i64 7
}
"""


def _machine():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(opt=0)


def test_a_runtime_module_built_here_runs_from_the_mcjit_that_compiled_it(monkeypatch):
    obj, jit = disk_cache.compiled_object(_TEXT, _machine(), "gj_test_seven")
    made = []
    real = llvm.create_mcjit_compiler
    monkeypatch.setattr(llvm, "create_mcjit_compiler",
                        lambda *a: made.append(1) or real(*a))
    assert disk_cache.linked(obj, _machine, {"jit": jit}) is jit and made == []
    other = disk_cache.linked(obj, _machine, {})          # as after a disk-cache hit
    assert made == [1]
    for j in (jit, other):
        address = j.get_function_address("gj_test_seven")
        assert ctypes.CFUNCTYPE(ctypes.c_int64)(address)() == 7


def test_the_compile_log_splits_llvm_into_passes_and_machine_code(gradjit_env, caplog):
    gradjit_env("GRADJIT_LOG", "1")
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    runtime.clear_cache()
    with caplog.at_level(logging.INFO, logger="gradjit"):
        runtime.compile(tanh_sum(41, "logged_phases"))
    (event,) = [r for r in caplog.records if getattr(r, "event", None) == "compile"]
    phases_ms = event.fields["phases_ms"]
    assert {"codegen", "llvm passes", "machine code", "llvm"} <= set(phases_ms)
    assert sum(phases_ms.values()) <= event.fields["ms"] * 1.01 + 0.1
    assert "llvm passes" in event.getMessage() and "machine code" in event.getMessage()
