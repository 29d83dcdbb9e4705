"""The tile gemm functions a program's lowering will declare, known before lowering
(codegen/tile_needs.py) so that runtime.build_executable starts their builds first
(blas_tiles.prefetch): the prediction equals what lowering declares (benchmark programs and
generated products of every layout), a product that cannot take tiles plans nothing twice,
and the build started before lowering gives the same bits as the build lowering starts (fresh
processes). Counters and declared keys, never timings."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradjit as gj
import runtime
from benchmarks import startup
from codegen import fusion, tile_needs
from runtime import blas, blas_tiles
from tests.runtime.fresh import run_with_cache

pytestmark = pytest.mark.skipif(not blas.available(), reason="tile functions need the BLAS")


def _declared_and_predicted(monkeypatch, f, args) -> tuple[list, list]:
    """(keys lowering declares, in order, each once; keys tile_keys predicts) for f's program."""
    fn = gj.jit(f).lower(*args).ir
    declared: list = []
    real = blas_tiles._provided_or_started

    def record(dtype, packed, b_trans):
        if (dtype, packed, b_trans) not in declared:
            declared.append((dtype, packed, b_trans))
        return real(dtype, packed, b_trans)
    monkeypatch.setattr(blas_tiles, "_provided_or_started", record)
    runtime.lower(fn)
    monkeypatch.setattr(blas_tiles, "_provided_or_started", real)
    return declared, tile_needs.tile_keys(fn, runtime.externals(fn))


@pytest.mark.parametrize("name", ["mlp", "lstm"])
def test_benchmark_programs_predicted_as_declared(monkeypatch, name):
    """benchmarks.startup's mlp and lstm (the first calls whose wait this shortens)."""
    log_softmax = lambda z: gj.log_softmax(z, axis=1)  # noqa: E731
    f, argnums = (startup._mlp(gj, log_softmax) if name == "mlp"
                  else startup._lstm(gj, gj.scan))
    declared, predicted = _declared_and_predicted(
        monkeypatch, gj.value_and_grad(f, argnums=argnums), startup.ARGS[name]())
    assert declared, "the benchmark program no longer calls a tile function"
    assert predicted == declared


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=st.sampled_from([4, 12, 64, 200]), k=st.sampled_from([8, 96, 300]),
       n=st.sampled_from([10, 64, 130]), batch=st.sampled_from([1, 3]),
       trans_a=st.booleans(), trans_b=st.booleans(), out_t=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_generated_products_predicted_as_declared(monkeypatch, m, k, n, batch, trans_a,
                                                  trans_b, out_t, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((batch, k, m) if trans_a else (batch, m, k)).astype(dtype)
    b = rng.standard_normal((batch, n, k) if trans_b else (batch, k, n)).astype(dtype)

    def f(a, b):
        a2 = gj.swapaxes(a, 1, 2) if trans_a else a
        b2 = gj.swapaxes(b, 1, 2) if trans_b else b
        c = gj.tanh(a2 @ b2)
        return gj.swapaxes(c, 1, 2) if out_t else c
    declared, predicted = _declared_and_predicted(monkeypatch, f, [a, b])
    assert predicted == declared


@pytest.mark.parametrize("layout", range(8))
def test_every_layout_of_a_large_product(monkeypatch, layout):
    """A, B and the result stored transposed or not: each reaches a tile function."""
    trans_a, trans_b, out_t = (bool(layout & bit) for bit in (1, 2, 4))
    rng = np.random.default_rng(layout)
    a = rng.standard_normal((300, 200) if trans_a else (200, 300)).astype(np.float32)
    b = rng.standard_normal((128, 300) if trans_b else (300, 128)).astype(np.float32)

    def f(a, b):
        c = gj.tanh((a.T if trans_a else a) @ (b.T if trans_b else b))
        return c.T if out_t else c
    declared, predicted = _declared_and_predicted(monkeypatch, f, [a, b])
    assert declared and predicted == declared   # (B transposed or not: both keys met)


def test_small_products_plan_nothing_twice(monkeypatch):
    """gmm's batched small products cannot take tiles: no fusion plan is made for them."""
    planned = []
    real = fusion.plan_function
    monkeypatch.setattr(tile_needs, "plan_function", lambda *a: planned.append(1) or real(*a))
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((25, 10, 10)), rng.standard_normal((25, 10, 1000))
    declared, predicted = _declared_and_predicted(monkeypatch, lambda a, b: (a @ b).sum(),
                                                  [a, b])
    assert declared == predicted == [] and planned == []
    a, b = rng.standard_normal((300, 400)), rng.standard_normal((400, 200))
    declared, predicted = _declared_and_predicted(monkeypatch, lambda a, b: (a @ b).sum(),
                                                  [a, b])
    assert declared == predicted != [] and planned == [1]


SCRIPT = """
import threading
import numpy as np, gradjit as gj
import runtime, codegen
from runtime import blas_tiles, llvm_split
llvm_split.idle_core = lambda: True
runtime.PREFETCH_TILES = {prefetch}
order = []
real_lower = codegen.lower_function
real_start = threading.Thread.start

def lower(*a, **k):
    order.append("lower")
    return real_lower(*a, **k)

def start(self):
    if self.name == "gradjit-tile-gemm":
        order.append("tile-build")
    return real_start(self)
codegen.lower_function = lower
threading.Thread.start = start
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 300)).astype(np.float32)
w = rng.standard_normal((300, 100)).astype(np.float32)
y = gj.jit(lambda a, b: gj.tanh(a @ b) * 2.0)(x, w)
print(",".join(order), blas_tiles.prefetched[0], blas_tiles.builds, np.asarray(y).tobytes().hex())
"""


def test_the_build_starts_before_lowering_with_the_same_bits(tmp_path):
    before, started, builds, y = run_with_cache(SCRIPT.format(prefetch=True),
                                                tmp_path / "a").stdout.split()
    assert before.startswith("tile-build,lower") and (started, builds) == ("1", "1")
    after, started0, builds0, y0 = run_with_cache(SCRIPT.format(prefetch=False),
                                                  tmp_path / "b").stdout.split()
    assert after.startswith("lower,tile-build") and (started0, builds0) == ("1", "1")
    assert y == y0
