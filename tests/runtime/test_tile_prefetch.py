"""The tile gemm function built on a helper thread while the rest of the program is lowered
(runtime/blas_tiles.py's prefetching/settle, when a core is idle): the same bits as the
build on the lowering thread, and every failure falls back as the build there does: an
LLVM error leaves the BLAS (the kernel is lowered again), any other error on the helper is
met again on the calling thread. Each case is a fresh process (the function is built once
per process) with a cold disk cache of its own; counters, never timings."""
import numpy as np
import pytest

import runtime
from runtime import blas_tiles
from tests.runtime.fresh import run_with_cache

SCRIPT = """
import threading
import numpy as np, gradjit as gj
from runtime import blas_tiles, llvm_split
llvm_split.idle_core = lambda: True
blas_tiles.PREFETCH = {prefetch}
real_build = blas_tiles._build

def build(*args):
    on_helper = threading.current_thread().name == "gradjit-tile-gemm"
    if {fail!r} == "llvm" or ({fail!r} == "helper" and on_helper):
        raise (RuntimeError if {fail!r} == "llvm" else ValueError)("refused by the test")
    return real_build(*args)

blas_tiles._build = build
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 300)).astype(np.float32)
w = rng.standard_normal((300, 100)).astype(np.float32)
y = gj.jit(lambda a, b: gj.tanh(a @ b) * 2.0)(x, w)
linked = sum(v is not None for v in blas_tiles._state.values())
print(blas_tiles.prefetched[0], blas_tiles.builds, linked, np.asarray(y).tobytes().hex())
"""


def _run(tmp_path, prefetch: bool, fail: str = ""):
    out = run_with_cache(SCRIPT.format(prefetch=prefetch, fail=fail), tmp_path)
    started, builds, linked, y = out.stdout.split()
    return int(started), int(builds), int(linked), y, out.stderr


def _close_to_product(hex_bytes: str):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 300)).astype(np.float32)
    w = rng.standard_normal((300, 100)).astype(np.float32)
    y = np.frombuffer(bytes.fromhex(hex_bytes), np.float32).reshape(64, 100)
    np.testing.assert_allclose(y, np.tanh(x.astype(np.float64) @ w) * 2.0, atol=1e-4)


def test_helper_build_gives_the_same_bits(tmp_path):
    started, builds, linked, y, log = _run(tmp_path / "a", prefetch=True)
    assert (started, builds, linked) == (1, 1, 1)
    started0, builds0, linked0, y0, _ = _run(tmp_path / "b", prefetch=False)
    assert (started0, builds0, linked0) == (0, 1, 1)
    assert y == y0
    assert "tile gemm" not in log or "unavailable" not in log
    _close_to_product(y)


def test_llvm_failure_on_the_helper_lowers_again_with_the_blas(tmp_path):
    started, builds, linked, y, log = _run(tmp_path / "a", prefetch=True, fail="llvm")
    assert (started, linked) == (1, 0)
    assert "unavailable (refused by the test); kernels call the BLAS" in log
    _, _, _, y0, log0 = _run(tmp_path / "b", prefetch=False, fail="llvm")
    assert "kernels call the BLAS" in log0
    assert y == y0                        # the BLAS kernel, as without the helper
    _close_to_product(y)


def test_other_error_on_the_helper_is_built_again_by_the_caller(tmp_path):
    started, builds, linked, y, _ = _run(tmp_path / "a", prefetch=True, fail="helper")
    assert (started, builds, linked) == (1, 1, 1)   # the caller's build: the helper's raised
    _, _, _, y0, _ = _run(tmp_path / "b", prefetch=False)
    assert y == y0


def test_only_a_compile_prefetches(monkeypatch):
    """Lowering outside runtime.compile (runtime.lower: text, assembly) builds on its own
    thread as before: nothing would settle a helper's build there."""
    monkeypatch.setattr(blas_tiles, "_state", {})
    monkeypatch.setattr(blas_tiles.llvm_split, "idle_core", lambda: True)
    started = blas_tiles.prefetched[0]
    import gradjit as gj
    fn = gj.make_ir(lambda a, b: a @ b)(np.zeros((64, 300), np.float32),
                                        np.zeros((300, 100), np.float32))
    text = runtime.lower(fn).llvm_ir
    assert blas_tiles.prefetched[0] == started
    assert blas_tiles.settle(text)
    assert not blas_tiles._pending


@pytest.mark.parametrize("text", ['declare void @"gradjit_packed_f64"(ptr)',
                                  "declare void @gradjit_packed_f64(ptr)",
                                  'declare void @"gradjit_packed_f64_x"(ptr)', ""])
def test_settle_joins_only_what_the_text_declares(monkeypatch, text):
    calls = []
    monkeypatch.setattr(blas_tiles, "provide",
                        lambda d, p=False, b=False: calls.append((d, p, b)) or True)
    assert blas_tiles.settle(text)
    declared = text.endswith("f64\"(ptr)") or "f64(" in text
    assert calls == ([("f64", True, False)] if declared else [])


def test_settle_finds_a_lowered_kernels_declaration(monkeypatch):
    """On real codegen output: a kernel calling the tile function is settled."""
    import gradjit as gj
    calls = []
    monkeypatch.setattr(blas_tiles, "provide",
                        lambda d, p=False, b=False: calls.append((d, p, b)) or True)
    fn = gj.make_ir(lambda a, b: a @ b)(np.zeros((64, 300), np.float32),
                                        np.zeros((300, 100), np.float32))
    text = runtime.lower(fn).llvm_ir          # (its lowering asks provide once)
    calls.clear()
    assert blas_tiles.settle(text)
    assert calls == [("f32", False, False)]


def test_a_failed_lowering_still_waits_for_the_helper(monkeypatch):
    """Nothing settles after an error in lowering: prefetching() joins the build itself."""
    import threading
    done = threading.Event()

    class Slow(threading.Thread):
        def run(self):
            done.wait(0.2)
            done.set()
    monkeypatch.setattr(blas_tiles, "_pending", {})
    thread = Slow()
    with pytest.raises(ValueError, match="lowering failed"):
        with blas_tiles.prefetching():
            blas_tiles._pending[("f32", True, False)] = thread
            thread.start()
            raise ValueError("lowering failed")
    assert done.is_set() and not thread.is_alive()


SWAPPED = """
import gc
import numpy as np, gradjit as gj
from runtime import blas_tiles
a, b = np.ones((64, 300), np.float32), np.ones((300, 100), np.float32)
gj.jit(lambda a, b: a @ b)(a, b)               # the tile function, linked once
saved, blas_tiles._state = blas_tiles._state, {}
blas_tiles.provide("f32")                      # a second one: the symbol now points at it
blas_tiles._state = saved                      # (what a test's monkeypatch restores)
gc.collect()
print(float(np.asarray(gj.jit(lambda a, b: (a @ b) * 2.0)(a, b))[0, 0]))
"""


def test_a_replaced_tile_function_stays_callable(tmp_path):
    """add_symbol is process-wide: the code it last pointed at must outlive the _state entry
    that held it, or a kernel linked later calls freed memory (a crash late in a CI run)."""
    out = run_with_cache(SWAPPED, tmp_path)
    assert float(out.stdout.split()[-1]) == 600.0
