"""runtime.blas: finding NumPy's BLAS, the ctypes matmul, the llvmlite registration and the
fixed-signature gemm declaration called from MCJIT-compiled code.

Three back ends are exercised through one JIT harness: the registered library entry
(`llvm_declaration`), the Fortran adapter (the same library's Fortran-style symbol) and the LP64
adapter (a ctypes callback with 32-bit sizes that forwards to the real gemm, so the truncation is
checked against real results). Every result is compared with NumPy in float64.
"""

import ctypes
import ctypes.util
import fnmatch

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir

from runtime import blas
from tests.filecheck import filecheck

pytestmark = pytest.mark.skipif(not blas.available(), reason="NumPy links no usable BLAS")

DTYPES = {"f32": np.float32, "f64": np.float64}
CTYPES = {"f32": ctypes.c_float, "f64": ctypes.c_double}
SHAPES = [(1, 1, 1), (1, 7, 1), (5, 1, 3), (3, 4, 1), (1, 1, 9), (7, 5, 3), (33, 17, 65),
          (64, 10, 256)]


def rand(shape, dt, seed):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(DTYPES[dt])


def assert_matches(got, want, dt, k):
    """Compare with a float64 reference; the tolerance grows with the contraction length."""
    atol = (2e-6 if dt == "f32" else 1e-14) * max(k, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5 if dt == "f32" else 1e-12, atol=atol)


def stored(x, trans):
    """How an operand is laid out in memory: x itself, or a transposed copy (flag TRANS)."""
    return np.ascontiguousarray(x.T if trans else x)


# ---- discovery and registration ---------------------------------------------------------------

def test_binding_is_numpys_own_copy_with_both_gemms():
    found = blas.binding()
    assert found.path in blas.candidate_paths()
    assert found.layout in ("cblas", "fortran") and found.int_bits in (32, 64)
    assert all(found.addresses[t] for t in "sd")
    with open("/proc/self/maps") as maps:
        assert found.path in maps.read(), "bound a different copy than the one numpy loaded"


@given(st.lists(st.sampled_from(["blas", ".so", ".dylib", ".dll", "a", ".", "s", "o", "l", "B"]),
                max_size=8).map("".join) | st.text(max_size=12))
@settings(max_examples=300, deadline=None)
def test_library_names_are_globs_patterns(name):
    """The listing's name tests are glob's "*blas*.so*", "*blas*.dylib", "*blas*.dll"."""
    patterns = ("*blas*.so*", "*blas*.dylib", "*blas*.dll")
    assert [fnmatch.fnmatchcase(name, p) for p in patterns] == \
        [matches(name) for matches in blas._LIBRARY_NAME_TESTS]


def test_package_directories_are_listed_only_when_no_mapped_library_binds(monkeypatch):
    listed = []
    real_listing = blas._package_libraries
    monkeypatch.setattr(blas, "_package_libraries", lambda: listed.append(1) or real_listing())
    first = blas.binding()
    try:
        blas.binding.cache_clear()
        again = blas.binding()
        assert again.path == first.path and again.addresses == first.addresses
        assert listed == []                          # numpy's library is mapped: no listing
        monkeypatch.setattr(blas, "_mapped_libraries", lambda: [])
        blas.binding.cache_clear()
        listed_only = blas.binding()
        assert listed == [1] and listed_only.path in real_listing()
        assert listed_only.addresses == first.addresses    # the same copy, loaded again
    finally:
        blas.binding.cache_clear()


def test_register_is_idempotent_and_points_llvm_at_the_library():
    first = blas.register()
    second = blas.register()
    assert first == second
    assert first["sgemm"] == "gradjit_sgemm" and first["dgemm"] == "gradjit_dgemm"
    assert first["int_bits"] == blas.binding().int_bits
    assert first["layout"] == blas.binding().layout
    assert llvm.address_of_symbol("gradjit_sgemm") == blas.binding().addresses["s"]
    assert llvm.address_of_symbol("gradjit_dgemm") == blas.binding().addresses["d"]


def test_bind_rejects_a_library_without_gemm():
    assert blas.bind(ctypes.util.find_library("c")) is None
    assert blas.bind("/nonexistent/libopenblas.so") is None


# ---- ctypes matmul ----------------------------------------------------------------------------

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_matmul_matches_numpy(dt, m, n, k, ta, tb):
    a = rand((m, k), dt, 1)
    b = rand((k, n), dt, 2)
    # A transposed view of a C-ordered array is F-ordered: matmul passes it with the TRANS flag.
    a_in = stored(a, ta).T if ta else a
    b_in = stored(b, tb).T if tb else b
    got = blas.matmul(a_in, b_in)
    assert got.dtype == DTYPES[dt] and got.shape == (m, n)
    assert_matches(got, a.astype(np.float64) @ b.astype(np.float64), dt, k)


@pytest.mark.parametrize("dt", DTYPES)
def test_matmul_through_the_fortran_symbols(dt):
    fortran = blas.bind(blas.binding().path, layouts=("fortran",))
    if fortran is None:
        pytest.skip("library has no Fortran-style gemm")
    assert fortran.layout == "fortran"
    a, b = rand((6, 4), dt, 3), rand((4, 9), dt, 4)
    for a_in, b_in in [(a, b), (np.asfortranarray(a), b), (a, np.asfortranarray(b))]:
        assert_matches(blas.matmul(a_in, b_in, fortran), a.astype(np.float64) @ b, dt, 4)


def test_matmul_copies_strided_inputs_and_handles_empty_contraction():
    a = rand((8, 12), "f64", 5)[::2, 1::3]
    b = rand((4, 6), "f64", 6)
    assert not a.flags.c_contiguous and not a.flags.f_contiguous
    assert_matches(blas.matmul(a, b), a @ b, "f64", 4)
    empty = blas.matmul(np.empty((3, 0), np.float32), np.empty((0, 2), np.float32))
    np.testing.assert_array_equal(empty, np.zeros((3, 2), np.float32))


def test_matmul_rejects_bad_operands():
    with pytest.raises(ValueError, match="bad shapes"):
        blas.matmul(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(TypeError, match="dtypes differ"):
        blas.matmul(np.ones((2, 3)), np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="unsupported dtype"):
        blas.matmul(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64))


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 40),
       ta=st.booleans(), tb=st.booleans(), dt=st.sampled_from(list(DTYPES)))
def test_matmul_random_shapes(m, n, k, ta, tb, dt):
    a, b = rand((m, k), dt, m * 97 + k), rand((k, n), dt, n * 89 + k)
    got = blas.matmul(stored(a, ta).T if ta else a, stored(b, tb).T if tb else b)
    assert_matches(got, a.astype(np.float64) @ b.astype(np.float64), dt, k)


# ---- threads ----------------------------------------------------------------------------------

def test_set_num_threads_round_trips_and_numpy_still_agrees():
    before = blas.get_num_threads()
    if before is None:
        pytest.skip("library cannot report its thread count")
    try:
        assert blas.set_num_threads(1) is True
        assert blas.get_num_threads() == 1
        a, b = rand((200, 150), "f32", 7), rand((150, 120), "f32", 8)
        assert_matches(blas.matmul(a, b), a.astype(np.float64) @ b, "f32", 150)
    finally:
        blas.set_num_threads(before)
    assert blas.get_num_threads() == before
    with pytest.raises(ValueError):
        blas.set_num_threads(0)


# ---- JIT harness ------------------------------------------------------------------------------

def host_target_machine() -> llvm.TargetMachine:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten())


def lp64_binding():
    """A cblas binding with 32-bit sizes: ctypes callbacks that widen and forward to the real one.

    The callbacks also record every (m, n, k) they receive, so a test can see them used.
    """
    real = blas.binding()
    if real.layout != "cblas":
        return None, None, None
    i32 = ctypes.c_int32
    calls = []
    callbacks = {}
    for t, dt in (("s", "f32"), ("d", "f64")):
        target = blas._cfunc(real.addresses[t], "cblas", real.int_bits, t)
        real_t = CTYPES[dt]
        proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, i32, i32, i32,
                                 real_t, ctypes.c_void_p, i32, ctypes.c_void_p, i32, real_t,
                                 ctypes.c_void_p, i32)

        def forward(*args, target=target):
            calls.append(args[3:6])
            target(*args)
        callbacks[t] = proto(forward)
    addresses = {t: ctypes.cast(cb, ctypes.c_void_p).value for t, cb in callbacks.items()}
    found = blas.Binding("<callbacks>", "cblas", 32, {"s": "cb_s", "d": "cb_d"}, addresses)
    return found, callbacks, calls


class JitGemm:
    """For one back end, kernels `gemm_f32`/`gemm_f64` that forward all 14 arguments to the
    declaration under test, compiled once with MCJIT (optionally at O2, which inlines adapters)."""

    def __init__(self, variant: str, opt: int):
        self.keepalive = None
        self.calls = None
        module = ir.Module(name=f"blas_{variant}")
        for dt in DTYPES:
            callee = self.declare(module, dt, variant)
            kernel = ir.Function(module, blas.gemm_type(dt), f"gemm_{dt}")
            bld = ir.IRBuilder(kernel.append_basic_block("entry"))
            bld.call(callee, list(kernel.args))
            bld.ret_void()
        self.text = str(module)
        tm = host_target_machine()
        module.triple = tm.triple
        module.data_layout = str(tm.target_data)
        self.mod = llvm.parse_assembly(self.text)
        self.mod.verify()
        if opt:
            pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=opt))
            pb.getModulePassManager().run(self.mod, pb)
        self.engine = llvm.create_mcjit_compiler(self.mod, tm)
        self.engine.finalize_object()
        self.funcs = {dt: blas._cfunc(self.engine.get_function_address(f"gemm_{dt}"), "cblas",
                                      64, "s" if dt == "f32" else "d") for dt in DTYPES}

    def declare(self, module, dt, variant):
        t = "s" if dt == "f32" else "d"
        if variant == "registered":
            return blas.llvm_declaration(module, dt)
        if variant == "fortran":
            found = blas.bind(blas.binding().path, layouts=("fortran",))
            if found is None:
                pytest.skip("library has no Fortran-style gemm")
        else:
            # NOTE: one binding serves both dtypes; its callbacks must outlive the engine.
            if self.keepalive is None:
                self.lp64, self.keepalive, self.calls = lp64_binding()
            found = self.lp64
            if found is None:
                pytest.skip("no cblas entry to forward the LP64 callbacks to")
        symbol = f"gradjit_test_{variant}_{t}gemm"
        llvm.add_symbol(symbol, found.addresses[t])
        return blas.declare_gemm(module, t, found, symbol)


VARIANTS = [("registered", 0), ("registered", 2), ("fortran", 0), ("fortran", 2), ("lp64", 0),
            ("lp64", 2)]


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: f"{v[0]}-O{v[1]}")
def jit(request):
    return JitGemm(*request.param)


def run_jit(jit, dt, order, ta, tb, m, n, k, alpha, beta, seed):
    """Call the JIT kernel on operands stored per (order, flags); return (C, expected)."""
    a, b, c0 = rand((m, k), dt, seed), rand((k, n), dt, seed + 1), rand((m, n), dt, seed + 2)
    col = order == blas.COL_MAJOR

    def lay(x, trans):
        s = x.T if trans else x
        return (np.asfortranarray(s), s.shape[0]) if col else (np.ascontiguousarray(s), s.shape[1])
    (a_mem, lda), (b_mem, ldb) = lay(a, ta), lay(b, tb)
    c = np.asfortranarray(c0) if col else c0.copy()
    ldc = m if col else n
    flag = {False: blas.NO_TRANS, True: blas.TRANS}
    jit.funcs[dt](order, flag[ta], flag[tb], m, n, k, alpha, a_mem.ctypes.data, lda,
                  b_mem.ctypes.data, ldb, beta, c.ctypes.data, ldc)
    want = alpha * (a.astype(np.float64) @ b.astype(np.float64)) + beta * c0.astype(np.float64)
    return c, want


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("order", [blas.ROW_MAJOR, blas.COL_MAJOR], ids=["row", "col"])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_jit_gemm_matches_numpy(jit, dt, order, ta, tb):
    for i, (m, n, k) in enumerate([(1, 1, 1), (5, 3, 1), (1, 6, 4), (13, 7, 29)]):
        c, want = run_jit(jit, dt, order, ta, tb, m, n, k, 1.0, 0.0, seed=10 * i)
        assert_matches(c, want, dt, k)
    c, want = run_jit(jit, dt, order, ta, tb, 9, 4, 6, -0.5, 2.0, seed=99)
    assert_matches(c, want, dt, 6)


def test_jit_lp64_adapter_passes_32_bit_sizes():
    jit = JitGemm("lp64", 0)
    c, want = run_jit(jit, "f64", blas.ROW_MAJOR, False, True, 7, 3, 5, 1.0, 0.0, seed=4)
    assert_matches(c, want, "f64", 5)
    assert jit.calls == [(7, 3, 5)]
    filecheck(jit.text, """
        CHECK-LABEL: define internal void @"gradjit_test_lp64_dgemm_rowmajor_i64"
        CHECK:       trunc i64
        CHECK:       call void @"gradjit_test_lp64_dgemm"(i32
    """)


def test_llvm_declaration_is_the_library_entry_and_is_reused():
    module = ir.Module()
    first = blas.llvm_declaration(module, "f32")
    assert blas.llvm_declaration(module, np.float32) is first
    assert blas.llvm_declaration(module, ir.DoubleType()) is not first
    assert first.function_type == blas.gemm_type("f32")
    with pytest.raises(TypeError, match="unsupported dtype"):
        blas.llvm_declaration(module, "i64")
    if blas.binding().layout == "cblas" and blas.binding().int_bits == 64:
        assert first.name == "gradjit_sgemm" and first.is_declaration
    filecheck(str(module), """
        CHECK: void @"gradjit_sgemm"(
        CHECK: void @"gradjit_dgemm"(
    """)


def test_fortran_adapter_swaps_operands_for_row_major():
    found = blas.bind(blas.binding().path, layouts=("fortran",))
    if found is None:
        pytest.skip("library has no Fortran-style gemm")
    module = ir.Module()
    fn = blas.declare_gemm(module, "d", found, "fortran_dgemm")
    assert blas.declare_gemm(module, "d", found, "fortran_dgemm") is fn
    assert fn.linkage == "internal" and fn.function_type == blas.gemm_type("f64")
    filecheck(str(module), """
        CHECK-LABEL: define internal void @"fortran_dgemm_rowmajor_i64"
        CHECK:       icmp ne i32
        CHECK:       select
        CHECK:       call void @"fortran_dgemm"(
        CHECK:       declare void @"fortran_dgemm"(ptr
    """)
