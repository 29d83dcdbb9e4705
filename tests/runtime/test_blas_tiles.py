"""codegen.gemm_tiles' function compiled once per process and kept in the disk cache
(runtime/blas_tiles.py): a second process loads the kernels and the function's object code
from the cache (nothing compiled) and computes the same bits."""
import numpy as np

from tests.runtime.fresh import run_with_cache

SCRIPT = """
import numpy as np, gradjit as gj
from codegen import gemm_tiles
from runtime import blas_tiles
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 300)).astype(np.float32)
w = rng.standard_normal((300, 100)).astype(np.float32)
y = gj.jit(lambda a, b: a @ b)(x, w)
z = gj.jit(lambda a, b: (a @ b) * 2.0)(x, w)      # a second kernel: no second build
print(blas_tiles.builds, np.asarray(y).tobytes().hex(), np.asarray(z).tobytes().hex())
"""


def test_built_once_per_process_then_taken_from_the_disk_cache(tmp_path):
    def run():
        out = run_with_cache(SCRIPT, tmp_path)
        builds, y, z = out.stdout.split()
        return int(builds), y, z, out.stderr

    builds1, y1, z1, log1 = run()
    assert builds1 == 1 and "disk cache miss for gj_gradjit_tiles_f32: no entry" in log1
    builds2, y2, z2, log2 = run()       # kernels and function from disk: nothing compiled
    assert builds2 == 0 and "disk cache hit for gj_gradjit_tiles_f32" in log2
    assert (y2, z2) == (y1, z1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 300)).astype(np.float32)
    w = rng.standard_normal((300, 100)).astype(np.float32)
    y = np.frombuffer(bytes.fromhex(y1), np.float32).reshape(64, 100)
    exact = x.astype(np.float64) @ w.astype(np.float64)
    bound = np.abs(x).astype(np.float64) @ np.abs(w) * 300 * np.finfo(np.float32).eps / 2
    assert np.all(np.abs(y - exact) <= bound)
    assert np.array_equal(np.frombuffer(bytes.fromhex(z1), np.float32).reshape(64, 100), y * 2)


def test_code_for_a_target_this_host_cannot_run_declares_without_building(monkeypatch):
    """Lowering for a foreign target (its assembly only) declares the function and calls
    it, but never builds it here; a failed build on this host leaves the BLAS (None)."""
    from llvmlite import ir as ll

    from runtime import blas_tiles

    class Foreign:
        runnable_problem = "not this host"

    def refuse(dtype, packed=False, b_trans=False):
        raise AssertionError("built for a foreign target")
    monkeypatch.setattr(blas_tiles, "create_execution_engine", lambda: Foreign())
    monkeypatch.setattr(blas_tiles, "provide", refuse)
    module = ll.Module()
    fn = blas_tiles.llvm_declaration(module, "f32")
    assert fn is not None and fn.name == "gradjit_tiles_f32" and fn.is_declaration

    class Host:
        runnable_problem = None
    monkeypatch.setattr(blas_tiles, "create_execution_engine", lambda: Host())
    monkeypatch.setattr(blas_tiles, "provide", lambda dtype, packed=False, b_trans=False: False)
    assert blas_tiles.llvm_declaration(ll.Module(), "f64") is None
