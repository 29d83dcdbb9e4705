"""The trig rare path (gradjit_trig_huge_f64) is compiled once per process and linked by
symbol from kernels (runtime/shared_code.py): kernels declare it, results equal the
interpreter at every magnitude, equal a kernel that carries its own copy bit for bit, and a
later process takes the helper's object code from the disk cache."""

import numpy as np
import pytest

import gradjit as gj
import runtime
from codegen import vmath_trig_huge
from ir.interpret import interpret
from runtime import engine, phases, shared_code
from tests.runtime.fresh import run_with_cache

HUGE = vmath_trig_huge.HUGE_TRIG


def _mixed(dt) -> np.ndarray:
    """Ordinary, huge (past the Cody-Waite range), non-finite and signed-zero arguments."""
    rng = np.random.default_rng(5)
    top = np.log10(float(np.finfo(dt).max)) - 1e-6
    x = np.concatenate([rng.uniform(-10, 10, 300), 10 ** rng.uniform(5, top, 300),
                        -(10 ** rng.uniform(5, top, 300)), [np.inf, -np.inf, np.nan, -0.0, 0.0]])
    return x.astype(dt)


def f(x):
    return gj.sin(x) * 1.5 + gj.cos(x) - gj.tan(x) / 8


def _kernel_text(fn) -> str:
    return runtime.lower(gj.make_ir(fn)(_mixed(np.float64))).llvm_ir


def test_kernels_declare_the_helper_instead_of_defining_it():
    text = _kernel_text(f)
    assert f'declare double @"{HUGE}"' in text and f'define internal double @"{HUGE}"' not in text
    assert shared_code.provide() and vmath_trig_huge._provider is shared_code.provide


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_shared_helper_equals_the_interpreter_at_every_magnitude(dt):
    x = _mixed(dt)
    got = np.asarray(gj.jit(f)(x))
    want = np.asarray(interpret(gj.make_ir(f)(x), x)[0])
    nan = np.isnan(want)
    assert (np.isnan(got) == nan).all()
    with np.errstate(invalid="ignore"):
        scale = np.maximum(1.0, np.abs(np.tan(x.astype(np.float64))) / 8)[~nan]
    tol = 1e-5 if dt == np.float32 else 1e-13
    assert (np.abs(got[~nan].astype(np.float64) - want[~nan]) <= tol * scale).all()
    assert np.abs(x[np.isfinite(x)]).max() > 1e30      # huge lanes: the rare path ran


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_shared_and_carried_helpers_agree_bitwise(dt, monkeypatch):
    x = _mixed(dt)
    runs = {}
    monkeypatch.setenv("GRADJIT_DISK_CACHE", "0")
    runtime.config.reload()
    try:
        for shared in (True, False):
            monkeypatch.setattr(shared_code, "install", lambda: None)
            vmath_trig_huge.use_shared(shared_code.provide if shared else None)
            runtime.clear_cache()
            engine.fresh_execution_engine()        # the entry symbol is the same text's
            assert (f'declare double @"{HUGE}"' in _kernel_text(f)) == shared
            runs[shared] = np.asarray(gj.jit(f)(x))
    finally:
        vmath_trig_huge.use_shared(shared_code.provide)
        monkeypatch.undo()
        runtime.config.reload()
        runtime.clear_cache()
    assert runs[True].tobytes() == runs[False].tobytes()


SCRIPT = """
import numpy as np, gradjit as gj
from runtime import shared_code
x = np.array([1.0, 1e22, -3e300, 2.5], np.float64)
y = gj.jit(lambda v: gj.sin(v) + gj.cos(v * 2))(x)
z = gj.jit(lambda v: gj.tan(v) - gj.sin(v))(x)      # a second kernel: no second build
print(shared_code.builds, repr(np.asarray(y).tolist()), repr(np.asarray(z).tolist()))
"""


def test_built_once_per_process_then_taken_from_the_disk_cache(tmp_path):
    def run():
        out = run_with_cache(SCRIPT, tmp_path)
        builds, y, z = out.stdout.split(" ", 2)
        return int(builds), y + z, out.stderr

    builds1, values1, log1 = run()
    assert builds1 == 1 and "disk cache miss for gj_shared: no entry" in log1
    builds2, values2, log2 = run()     # kernels and helper from disk: nothing compiled
    assert builds2 == 0 and "disk cache hit for gj_shared" in log2 and values2 == values1
    x = np.array([1.0, 1e22, -3e300, 2.5])
    want = np.sin(x) + np.cos(x * 2)
    assert np.allclose(eval(values1.split("]")[0] + "]"), want, rtol=1e-14, atol=0)


def test_a_phase_inside_another_is_taken_out_of_it(monkeypatch):
    """GRADJIT_LOG's breakdown: the helpers built inside codegen count once (a fake clock)."""
    ticks = iter([0.0, 1.0, 4.0, 6.0])        # codegen starts, shared starts, ends, ends
    monkeypatch.setattr(phases, "watching", lambda: True)
    monkeypatch.setattr(phases.time, "perf_counter", lambda: next(ticks))
    with phases.collect() as times:
        with phases.phase("codegen"):
            with phases.phase("shared code"):
                pass
    assert times == {"shared code": 3.0, "codegen": 3.0}
