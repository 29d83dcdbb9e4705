"""Code for other CPUs (GRADJIT_TARGET_CPU): every primitive compiles for each CPU; code runs
only where LLVM says the host has every feature the CPU enables, and then equals the
interpreter; elsewhere running it is refused with a clear error (issue 10, portability)."""
import re

import llvmlite.binding as llvm
import numpy as np
import pytest

import runtime
from ir.interpret import interpret
from runtime.engine import Engine, TargetError
from tests.prim_samples import SAMPLES, sample_args
from tests.codegen.test_codegen_primitives import assert_same

CPUS = ("haswell", "znver3", "skylake-avx512", "x86-64-v2")
AVX512 = re.compile(r"%k[1-7]\b|%[xyz]mm(1[6-9]|2\d|3[01])\b")   # mask and upper registers
HOST_FEATURES = llvm.get_host_cpu_features().flatten().split(",")


@pytest.fixture
def private_cache(tmp_path, monkeypatch, gradjit_env):
    gradjit_env("GRADJIT_CACHE_DIR", str(tmp_path / "cache"))
    gradjit_env("GRADJIT_SECRET_FILE", str(tmp_path / "secret"))
    runtime.clear_cache()
    yield
    runtime.clear_cache()


@pytest.fixture(scope="module")
def programs() -> list:
    """(case, fn, kernel) for the first sample of every primitive, f32 where it has one
    (where vector widths differ most between CPUs)."""
    out = []
    for name in sorted(SAMPLES):
        if not SAMPLES[name].compiled:
            continue
        case = SAMPLES[name].compiled[0]
        fn = case.build("f32" if "f32" in case.dtypes else case.dtypes[0])
        out.append((case, fn, runtime.lower(fn, bounds_check=False).kernel))
    return out


def assembly_of_all(engine: Engine, programs) -> str:
    """One module linking every kernel (each parsed and verified), optimised and compiled to
    the engine's CPU; nothing is run."""
    with engine.lock:
        mod = engine.parse(programs[0][2].llvm_ir, programs[0][2].entry)
        for _, _, kernel in programs[1:]:
            mod.link_in(engine.parse(kernel.llvm_ir, kernel.entry))
        engine.optimize(mod)
        return engine.target_machine.emit_assembly(mod)


@pytest.mark.parametrize("cpu", CPUS)
def test_every_primitive_compiles_for(cpu, programs):
    asm = assembly_of_all(Engine(cpu), programs)
    for _, fn, kernel in programs:
        assert re.search(rf"^\"?{re.escape(kernel.entry)}\"?:", asm, re.MULTILINE), fn.name
    if cpu == "x86-64-v2":                        # SSE4.2 at most: no AVX registers
        assert "%ymm" not in asm and "%zmm" not in asm
    elif cpu == "skylake-avx512":
        assert AVX512.search(asm)
    else:                                         # AVX2, no AVX-512
        assert "%ymm" in asm and not AVX512.search(asm)


@pytest.mark.parametrize("cpu", CPUS)
def test_code_for_a_cpu_runs_only_where_the_host_has_its_features(cpu, programs, monkeypatch,
                                                                  private_cache, gradjit_env):
    gradjit_env("GRADJIT_TARGET_CPU", cpu)
    engine = runtime.create_execution_engine()
    assert engine.cpu == cpu
    if "+avx512f" not in HOST_FEATURES and cpu == "skylake-avx512":
        assert engine.runnable_problem is not None
    if engine.runnable_problem is not None:
        case, fn, _ = programs[0]
        with pytest.raises(TargetError, match=f"GRADJIT_TARGET_CPU='{cpu}'.*not run"):
            runtime.compile(fn)
        assert runtime.lower(fn).assembly             # compiling for it still works
        return
    for case, fn, _ in programs:
        exe = runtime.compile(fn, bounds_check=False)
        assert exe._engine.cpu == cpu                  # not the host's code from a cache
        args = sample_args(case, fn, np.random.default_rng(0))
        assert_same(exe(*args), interpret(fn, *args), f"{fn.name} on {cpu}")


def test_the_baseline_cpu_always_runs():
    assert Engine("x86-64").runnable_problem is None


def test_the_host_default_runs_and_is_what_the_host_reports():
    engine = Engine()
    assert engine.runnable_problem is None
    assert engine.cpu == llvm.get_host_cpu_name() and engine.features == ",".join(HOST_FEATURES)


@pytest.mark.skipif("+avx512f" in HOST_FEATURES, reason="this host has AVX-512")
def test_a_feature_the_host_lacks_is_refused_for_running(private_cache, monkeypatch, gradjit_env):
    assert Engine(None, "+avx512f").runnable_problem is not None
    gradjit_env("GRADJIT_TARGET_FEATURES", "+avx512f")
    fn = SAMPLES["exp"].compiled[0].build("f32")
    with pytest.raises(TargetError, match=r"GRADJIT_TARGET_FEATURES=\+avx512f"):
        runtime.compile(fn)


def test_turning_a_feature_off_on_the_host_still_runs(private_cache, monkeypatch, gradjit_env):
    gradjit_env("GRADJIT_TARGET_FEATURES", "-avx2,-fma")
    case = SAMPLES["exp"].compiled[0]
    fn = case.build("f32")
    exe = runtime.compile(fn)
    args = sample_args(case, fn, np.random.default_rng(1))
    assert_same(exe(*args), interpret(fn, *args))
    assert "vfmadd" not in runtime.lower(fn).assembly


@pytest.mark.parametrize("cpu,features,match", [
    ("pentium-nonsense", None, "not a CPU LLVM knows"),
    ("haswell", "avx2", "not '\\+' or '-' followed by a feature"),
    ("haswell", "+no-such-feature", "not '\\+' or '-' followed by a feature"),
])
def test_unknown_cpus_and_features_are_errors(cpu, features, match, monkeypatch, gradjit_env):
    with pytest.raises(TargetError, match=match):
        Engine(cpu, features)
    gradjit_env("GRADJIT_TARGET_CPU", cpu)
    if features:
        gradjit_env("GRADJIT_TARGET_FEATURES", features)
    with pytest.raises(TargetError, match=match):
        runtime.create_execution_engine()


def test_host_names_the_host(monkeypatch, gradjit_env):
    gradjit_env("GRADJIT_TARGET_CPU", "host")
    assert runtime.create_execution_engine().cpu == llvm.get_host_cpu_name()
