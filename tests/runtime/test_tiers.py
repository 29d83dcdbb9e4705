"""The LLVM pipeline tiers (runtime/tiers.py): programs of fused loops compile at O1, the rest
at O3; GRADJIT_OPT_LEVEL=3 forces O3 and `1` O1; both tiers give the same results (bitwise
for elementwise programs, 1e-12 relative for reductions); the level is part of the disk
cache's key. Counters, never timings."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradjit as gj
import runtime
from ir.interpret import interpret
from runtime import config, engine, tiers
from runtime.disk_cache import entry_key


@pytest.fixture
def level():
    """Sets GRADJIT_OPT_LEVEL for the test (a fresh engine and cache per setting: the
    engine shares code by symbol, which does not name the level)."""
    def use(value):
        config.set_value("GRADJIT_OPT_LEVEL", value)
        runtime.clear_cache()
        engine.fresh_execution_engine()
    yield use
    config.set_value("GRADJIT_OPT_LEVEL", None)
    runtime.clear_cache()


def chain(x, w, b):
    return gj.tanh(x * w + b) ** 2 * 0.5 + gj.exp(-x * x) + gj.sin(x * 3e6)


def loss(x, w, b):
    return gj.sum(chain(x, w, b)) + gj.sum(gj.log1p(x * x) @ gj.ones((x.shape[-1], 3)))


def looped(x):
    return gj.fori_loop(0, 3, lambda i, c: c * 0.5 + gj.cos(c), x)


def _ir(f, *args):
    return gj.make_ir(f)(*args)


def test_policy_by_program_content(level):
    x = np.ones((4, 5))
    level("tiered")
    assert tiers.speed_level(_ir(chain, x, x, x)) == tiers.QUICK
    assert tiers.speed_level(_ir(gj.jit(gj.grad(loss)), x, x, x)) == tiers.QUICK
    assert tiers.speed_level(_ir(looped, x)) == tiers.FULL
    gathered = _ir(gj.grad(lambda v: gj.sum(v[np.array([0, 2, 2])] ** 2)), x)
    assert any(op.prim.name == "scatter_add" for op in gathered.body)
    assert tiers.speed_level(gathered) == tiers.QUICK
    assert tiers.speed_level(_ir(lambda v: gj.sort(v, axis=1), x)) == tiers.FULL
    ints = np.ones((4, 5), np.int32)
    assert tiers.speed_level(_ir(lambda a: a @ a.T, ints)) == tiers.FULL
    level("3")
    assert tiers.speed_level(_ir(chain, x, x, x)) == tiers.FULL
    level("1")
    assert tiers.speed_level(_ir(looped, x)) == tiers.QUICK


def test_bad_setting_is_a_clear_error(level):
    level("fast")
    with pytest.raises(ValueError, match="GRADJIT_OPT_LEVEL='fast'"):
        gj.jit(lambda v: v * 2)(np.ones(3))


def _compiled(level, value, f, *args):
    """f's results under GRADJIT_OPT_LEVEL=value, the programs compiled at each pipeline
    level and the MCJITs made at each machine-code level."""
    level(value)
    before, machines = dict(tiers.compiles), dict(engine.machines)
    out = gj.jit(f)(*args)
    out = [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]
    return out, {k: tiers.compiles[k] - before[k] for k in before}, \
        {k: engine.machines[k] - machines[k] for k in machines}


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_tiers_agree_bitwise_on_elementwise_programs(level, dt):
    rng = np.random.default_rng(3)
    args = [rng.standard_normal(10_003).astype(dt) for _ in range(3)]
    args[0][::101] = 1e30                                    # the trig rare path too
    quick, counted_quick, machines_quick = _compiled(level, "tiered", chain, *args)
    full, counted_full, machines_full = _compiled(level, "3", chain, *args)
    assert counted_quick == {1: 1, 3: 0} and counted_full == {1: 0, 3: 1}
    # machine code follows the pipeline's level (runtime.engine.codegen_level)
    assert machines_quick == {1: 1, 3: 0} and machines_full == {1: 0, 3: 1}
    assert quick[0].tobytes() == full[0].tobytes()
    want = np.asarray(interpret(_ir(chain, *args), *args)[0])
    assert np.allclose(quick[0], want, rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-6)


@settings(max_examples=8, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
                  elements=st.floats(-3, 3)))
def test_tiers_agree_on_reductions_and_gradients(x):
    f = gj.value_and_grad(loss, argnums=(0, 1))
    w, b = np.cos(x), np.sin(x)

    def run(value):
        config.set_value("GRADJIT_OPT_LEVEL", value)
        runtime.clear_cache()
        engine.fresh_execution_engine()
        value_, grads = gj.jit(f)(x, w, b)
        return [np.asarray(value_)] + [np.asarray(g) for g in grads]
    try:
        quick, full = run("1"), run("3")
    finally:
        config.set_value("GRADJIT_OPT_LEVEL", None)
        runtime.clear_cache()
    for a, b_ in zip(quick, full):
        assert np.allclose(a, b_, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(b_).max()))


def test_level_is_part_of_the_disk_cache_key(level):
    fn = _ir(chain, np.ones(3), np.ones(3), np.ones(3))
    eng = runtime.create_execution_engine()
    level("tiered")
    quick = entry_key(fn, "k", False, eng)
    level("3")
    full = entry_key(fn, "k", False, eng)
    assert quick["llvm_pipeline"] == 1 and full["llvm_pipeline"] == 3
    assert {k: v for k, v in quick.items() if k != "llvm_pipeline"} == \
        {k: v for k, v in full.items() if k != "llvm_pipeline"}


def test_inspection_shows_the_pipeline_that_runs(level):
    x = np.ones(64, np.float32)
    level("tiered")
    lowered = runtime.lower(_ir(chain, x, x, x))
    assert "x float>" in lowered.optimized_llvm_ir          # O1 still vectorises


def test_an_executable_shows_the_pipeline_it_ran_at(level, monkeypatch):
    """Executable.optimized_llvm_ir optimises at the program's own tier (it showed O3 for
    programs that ran at O1)."""
    x = np.ones(64, np.float32)
    asked = []
    shown = engine.Engine.optimized_text

    def spy(self, text, name="kernel", speed_level=3):
        asked.append(speed_level)
        return shown(self, text, name, speed_level)
    monkeypatch.setattr(engine.Engine, "optimized_text", spy)
    level("tiered")
    assert "x float>" in runtime.compile(_ir(chain, x, x, x)).optimized_llvm_ir
    assert "x float>" in runtime.compile(_ir(looped, x)).optimized_llvm_ir
    assert asked == [tiers.QUICK, tiers.FULL]
