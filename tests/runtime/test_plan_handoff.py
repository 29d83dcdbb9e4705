"""The fusion plans codegen/tile_needs.py makes to predict the tile functions are handed to
lowering (codegen.lower_function's `plans`), which then does not plan those functions again:
the module text is byte-identical to planning again (benchmark programs, a scan's region,
generated products), lowering makes no plan of its own for them, and a program that no
product can route to tiles hands nothing (lowering plans as before)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradjit as gj
import runtime
from benchmarks import startup
from codegen import emit, fusion, lower_function, tile_needs
from runtime import blas, config, engine

pytestmark = pytest.mark.skipif(not blas.available(), reason="tile functions need the BLAS")


def _program(name: str):
    log_softmax = lambda z: gj.log_softmax(z, axis=1)  # noqa: E731
    f, argnums = {"mlp": lambda: startup._mlp(gj, log_softmax),
                  "lstm": lambda: startup._lstm(gj, gj.scan),
                  "gmm": lambda: startup._gmm(gj, lambda t, i: t[:, gj.tensor(i)],
                                              gj.logsumexp)}[name]()
    return gj.make_ir(gj.value_and_grad(f, argnums=argnums))(*startup.ARGS[name]())


def _counting_plans(monkeypatch) -> list:
    """The Functions emit.py plans itself from now on."""
    planned = []
    real = fusion.plan_function
    monkeypatch.setattr(emit, "plan_function", lambda fn, *a: planned.append(fn) or real(fn, *a))
    return planned


def _both_ways(monkeypatch, fn) -> tuple[str, str, dict, list]:
    """(text planned by lowering, text from the handed plans, the plans, the functions
    lowering planned itself when handed them)."""
    ext = runtime.externals(fn)
    again = lower_function(fn, externals=ext).llvm_ir
    _, plans = tile_needs.tile_keys_and_plans(fn, ext)
    planned = _counting_plans(monkeypatch)
    handed = lower_function(fn, externals=ext, plans=plans).llvm_ir
    return again, handed, plans, planned


@pytest.mark.parametrize("name", ["mlp", "lstm"])
def test_benchmark_programs_lower_to_the_same_text_without_planning_again(monkeypatch, name):
    fn = _program(name)
    again, handed, plans, planned = _both_ways(monkeypatch, fn)
    assert fn in plans and handed == again
    assert planned == []                   # every function lowered was planned already
    if name == "lstm":                     # the scan's body (a region) was handed too
        assert len(plans) > 1


def test_no_product_for_tiles_hands_nothing(monkeypatch):
    """gmm's batched small products: tile_needs plans nothing, lowering plans everything."""
    fn = _program("gmm")
    again, handed, plans, planned = _both_ways(monkeypatch, fn)
    assert plans == {} and handed == again and fn in planned


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=st.sampled_from([12, 64, 200]), k=st.sampled_from([8, 96, 300]),
       n=st.sampled_from([10, 130]), trans_b=st.booleans(), out_t=st.booleans(),
       in_scan=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_generated_products_same_text(monkeypatch, m, k, n, trans_b, out_t, in_scan, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)

    def product(a, b):
        c = gj.tanh(a @ (b.T if trans_b else b))
        return c.T if out_t else c

    def f(a, b):
        if not in_scan:
            return product(a, b)
        carry, _ = gj.scan(lambda c, _: (c + product(a, b), None), product(a, b) * 0,
                           None, length=2)
        return carry
    fn = gj.make_ir(f)(a, b)
    with monkeypatch.context() as mp:
        again, handed, plans, planned = _both_ways(mp, fn)
    assert handed == again
    assert not plans or planned == []


@pytest.fixture
def no_disk():
    config.set_value("GRADJIT_DISK_CACHE", "0")
    runtime.clear_cache()
    engine.fresh_execution_engine()
    yield
    config.set_value("GRADJIT_DISK_CACHE", None)
    runtime.clear_cache()
    engine.fresh_execution_engine()


def test_the_runtime_hands_the_plans_and_runs_the_same_bits(monkeypatch, no_disk):
    """runtime.compile of mlp: with the tile prefetch on, lowering plans nothing itself
    (the top level was planned once, by tile_needs); off, it plans as before; same results."""
    fn = _program("mlp")
    args = startup.ARGS["mlp"]()
    planned = _counting_plans(monkeypatch)
    handed = [np.asarray(r).tobytes() for r in runtime.compile(fn)(*args)]
    assert planned == []
    runtime.clear_cache()
    engine.fresh_execution_engine()
    monkeypatch.setattr(runtime, "PREFETCH_TILES", False)
    again = [np.asarray(r).tobytes() for r in runtime.compile(fn)(*args)]
    assert fn in planned and handed == again
