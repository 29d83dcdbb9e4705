"""Matrix multiply through the BLAS that NumPy already links, callable from JIT-compiled code.

NumPy wheels ship OpenBLAS (``numpy.libs/libscipy_openblas64_-*.so``, the ``scipy_openblas64``
build): an ILP64 library (64-bit integers) whose symbols carry a prefix and suffix, for example
``scipy_cblas_sgemm64_`` (CBLAS) and ``scipy_sgemm_64_`` (Fortran). Other builds spell them
``cblas_sgemm64_``, ``sgemm_64_`` or plain ``cblas_sgemm``/``sgemm_``. This module finds that
library through NumPy itself (no new dependency), picks the gemm symbols, and registers them with
llvmlite under fixed names, ``gradjit_sgemm`` and ``gradjit_dgemm``, so codegen never sees the
real names.

Search order for the library: the shared objects mapped into this process after ``import
numpy`` (``/proc/self/maps``, so we bind the very copy NumPy uses and share its thread pool), then
the ``numpy.libs`` directory next to numpy, then the ``scipy_openblas64``/``scipy_openblas32``
packages, then the lib directory in ``numpy.__config__``. CBLAS symbols are preferred to Fortran.

Codegen calls ``llvm_declaration(module, dtype)``, which returns an ``llvmlite.ir.Function`` with
one fixed signature whatever the library provides (row-major CBLAS, 64-bit sizes)::

    void gemm(i32 order, i32 transa, i32 transb, i64 m, i64 n, i64 k, T alpha, ptr A, i64 lda,
              ptr B, i64 ldb, T beta, ptr C, i64 ldc)          ; T = float (f32) or double (f64)

It computes ``C = alpha * op(A) @ op(B) + beta * C`` with ``op(A)`` of shape (m, k), ``op(B)`` of
shape (k, n) and C of shape (m, n); use ``ROW_MAJOR`` (101) for order and ``NO_TRANS`` (111) or
``TRANS`` (112) for the transposes (``COL_MAJOR``, 102, works too, with column lengths as the
leading dimensions). ``lda`` is the row length of A *as stored* (k when not transposed, m when
transposed), likewise ``ldb`` (n or k) and ``ldc`` (n). Every leading dimension must be >= 1 even
for empty matrices. When the library is ILP64 CBLAS this is the registered symbol itself; otherwise
an internal adapter is emitted into the module (truncating sizes to 32 bits, or calling the Fortran
routine with pointers to its arguments and A/B swapped for row-major order).

Threads: OpenBLAS starts its own pthread pool when loaded, sized by ``OPENBLAS_NUM_THREADS`` (then
``GOTO_NUM_THREADS``, ``OMP_NUM_THREADS``; default the core count), and its workers wait for work
by spinning. Sized independently of gradjit's threads, two pools (or two processes) oversubscribe
the cores and a product stalls for milliseconds whenever a core is taken (measured: an MLP step
of 1.5 ms took 6-80 ms on a shared 2-core machine). So gradjit owns the threading: `register`
(gradjit binding the library for its kernels) sets the BLAS's pool to ``GRADJIT_BLAS_THREADS``
threads, default 1, through ``openblas_set_num_threads`` (any prefix/suffix of this module's
table) or MKL's ``MKL_Set_Num_Threads``, and codegen.gemm_split cuts large products into
blocks run on gradjit's threads. The setting is process-wide: NumPy's own ``matmul`` in the same
process shares the library and runs single-threaded from then on (``GRADJIT_BLAS_THREADS=keep``
leaves the library as it was; a later ``threadpoolctl`` or ``set_num_threads`` call wins).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir as ll

from runtime import config

ROW_MAJOR = 101
COL_MAJOR = 102
NO_TRANS = 111
TRANS = 112

SYMBOLS = {"s": "gradjit_sgemm", "d": "gradjit_dgemm"}

# (pattern, int bits); None bits means "ask the library's config string" (unsuffixed names are
# used by both LP64 and ILP64 builds).
_CBLAS_NAMES = [("scipy_cblas_{t}gemm64_", 64), ("cblas_{t}gemm64_", 64), ("cblas_{t}gemm_64", 64),
                ("scipy_cblas_{t}gemm", None), ("cblas_{t}gemm", None)]
_FORTRAN_NAMES = [("scipy_{t}gemm_64_", 64), ("{t}gemm_64_", 64), ("{t}gemm64_", 64),
                  ("scipy_{t}gemm_", None), ("{t}gemm_", None)]
_LAYOUT_TABLES = {"cblas": _CBLAS_NAMES, "fortran": _FORTRAN_NAMES}
# Prefix/suffix schemes of OpenBLAS's own C helpers (openblas_set_num_threads and friends).
_OPENBLAS_AFFIXES = [("scipy_", "64_"), ("", "64_"), ("", "_64"), ("", "")]


class Binding:
    """A resolved gemm pair: where it lives, how it is called and the entry addresses.

    NOTE: a plain class: making the frozen dataclass it was took ~2 ms of every process
    whose program has a dot (a warm start is ~50 ms)."""

    __slots__ = ("path", "layout", "int_bits", "names", "addresses", "lib")

    def __init__(self, path: str, layout: str, int_bits: int, names: dict, addresses: dict,
                 lib: ctypes.CDLL | None = None):
        self.path = path
        self.layout = layout          # "cblas" (row-major capable) or "fortran" (column-major)
        self.int_bits = int_bits      # width of the size arguments: 64 (ILP64) or 32 (LP64)
        self.names = names            # {"s": real symbol, "d": real symbol}
        self.addresses = addresses    # {"s": int, "d": int}
        self.lib = lib

    def __repr__(self) -> str:
        return (f"Binding(path={self.path!r}, layout={self.layout!r}, "
                f"int_bits={self.int_bits}, names={self.names!r})")


# --------------------------------------------------------------------------- finding the library

def _mapped_libraries() -> list[str]:
    """Paths of BLAS-looking shared objects already mapped into this process (Linux only)."""
    try:
        with open("/proc/self/maps") as maps:
            text = maps.read()
    except OSError:
        return []
    # NOTE: only lines that mention blas are split (splitting all of them was ~1 ms)
    paths = [line.split()[-1] for line in text.splitlines()
             if "blas" in line.lower() and "/" in line]
    return [p for p in dict.fromkeys(paths) if "blas" in os.path.basename(p).lower()]


def _package_libraries() -> list[str]:
    """BLAS libraries shipped next to numpy or in the scipy_openblas packages."""
    dirs = [os.path.dirname(np.__file__) + ".libs"]
    for package in ("scipy_openblas64", "scipy_openblas32"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            dirs.append(os.path.join(os.path.dirname(spec.origin), "lib"))
    blas_config = _numpy_blas_config()
    if blas_config.get("lib directory"):
        dirs.append(blas_config["lib directory"])
    found = []
    for d in dirs:
        try:
            names = sorted(n for n in os.listdir(d) if not n.startswith("."))
        except OSError:
            continue
        for matches in _LIBRARY_NAME_TESTS:
            found.extend(os.path.join(d, n) for n in names if matches(n))
    return found


def _after_blas(name: str, tail: str) -> bool:
    i = name.find("blas")
    return i >= 0 and name.find(tail, i + 4) >= 0


# glob's "*blas*.so*", "*blas*.dylib", "*blas*.dll", in that order (glob and its regular
# expressions were ~1.5 ms of a warm start)
_LIBRARY_NAME_TESTS = (lambda n: _after_blas(n, ".so"),
                       lambda n: n.endswith(".dylib") and _after_blas(n[:-6], ""),
                       lambda n: n.endswith(".dll") and _after_blas(n[:-4], ""))


def _numpy_blas_config() -> dict:
    """numpy.__config__'s blas section (empty if this numpy does not record one)."""
    config = getattr(getattr(np, "__config__", None), "CONFIG", {})
    return config.get("Build Dependencies", {}).get("blas", {}) or {}


def candidate_paths() -> list[str]:
    """Library paths to try, best first, without duplicates."""
    return list(dict.fromkeys(_mapped_libraries() + _package_libraries()))


# --------------------------------------------------------------------------- resolving symbols

def _openblas_function(lib: ctypes.CDLL, what: str):
    """OpenBLAS helper `openblas_<what>` under whichever prefix/suffix this build uses, or None."""
    for prefix, suffix in _OPENBLAS_AFFIXES:
        name = f"{prefix}openblas_{what}{suffix}"
        if hasattr(lib, name):
            return getattr(lib, name)
    return None


def _config_int_bits(lib: ctypes.CDLL) -> int:
    """64 if the library reports an ILP64 build (USE64BITINT), else 32."""
    get_config = _openblas_function(lib, "get_config")
    if get_config is None:
        return 32
    get_config.restype = ctypes.c_char_p
    return 64 if b"USE64BITINT" in (get_config() or b"") else 32


def bind(path: str, layouts: tuple = ("cblas", "fortran")) -> Binding | None:
    """Load the library at `path` and resolve its sgemm/dgemm pair, or None if it has none.

    Args:
        path: a shared library path; loading one NumPy already loaded reuses the same copy.
        layouts: which symbol families to accept, in order of preference.
    """
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for layout in layouts:
        for pattern, bits in _LAYOUT_TABLES[layout]:
            names = {t: pattern.format(t=t) for t in "sd"}
            if all(hasattr(lib, n) for n in names.values()):
                addresses = {t: ctypes.cast(getattr(lib, n), ctypes.c_void_p).value
                             for t, n in names.items()}
                return Binding(path, layout, bits or _config_int_bits(lib), names, addresses, lib)
    return None


@functools.cache
def binding() -> Binding | None:
    """The process-wide BLAS binding (first candidate that resolves), or None. The package
    directories are listed only when no mapped library resolves (NumPy's is mapped)."""
    tried = set()
    for paths in (_mapped_libraries, _package_libraries):
        for path in paths():
            if path not in tried:
                tried.add(path)
                found = bind(path)
                if found is not None:
                    return found
    return None


def _require() -> Binding:
    found = binding()
    if found is None:
        raise RuntimeError("BLAS: no sgemm/dgemm found in NumPy's libraries "
                           f"(searched {candidate_paths()})")
    return found


def available() -> bool:
    """True when a BLAS gemm pair was found and can be registered."""
    return binding() is not None


# --------------------------------------------------------------------------- llvmlite registration

_registered: dict | None = None


def register() -> dict:
    """Register `gradjit_sgemm`/`gradjit_dgemm` with llvmlite (idempotent) and describe them.

    Returns:
        {"sgemm": "gradjit_sgemm", "dgemm": "gradjit_dgemm", "int_bits": 64 or 32,
         "layout": "cblas" or "fortran", "library": path}

    Raises:
        RuntimeError: if no BLAS was found.
    """
    global _registered
    if _registered is None:
        found = _require()
        apply_thread_setting()
        for t, symbol in SYMBOLS.items():
            llvm.add_symbol(symbol, found.addresses[t])
        _registered = {"sgemm": SYMBOLS["s"], "dgemm": SYMBOLS["d"], "int_bits": found.int_bits,
                       "layout": found.layout, "library": found.path}
    return dict(_registered)


_IR_NAMES = {"f32": "s", "f64": "d"}
_NUMPY_DTYPES = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


def _type_key(dtype) -> str:
    """'s' or 'd' from 'f32'/'f64', a numpy dtype or an llvmlite float type."""
    if isinstance(dtype, ll.FloatType):
        return "s"
    if isinstance(dtype, ll.DoubleType):
        return "d"
    if isinstance(dtype, str) and dtype in _IR_NAMES:
        return _IR_NAMES[dtype]
    try:
        # NOTE: np.dtype(None) is float64, so None must not reach it.
        key = None if dtype is None else _NUMPY_DTYPES.get(np.dtype(dtype))
    except TypeError:
        key = None
    if key is None:
        raise TypeError(f"BLAS gemm: unsupported dtype {dtype!r} (need f32 or f64)")
    return key


def _float_type(t: str) -> ll.Type:
    return ll.FloatType() if t == "s" else ll.DoubleType()


def gemm_type(dtype) -> ll.FunctionType:
    """The fixed signature of the function `llvm_declaration` returns (see the module docstring)."""
    i32, i64, ptr = ll.IntType(32), ll.IntType(64), ll.PointerType()
    real = _float_type(_type_key(dtype))
    return ll.FunctionType(ll.VoidType(), [i32, i32, i32, i64, i64, i64, real, ptr, i64,
                                           ptr, i64, real, ptr, i64])


def llvm_declaration(module: ll.Module, dtype) -> ll.Function:
    """Declare (or reuse) the gemm for `dtype` in `module`; registers the symbols first.

    Args:
        module: the llvmlite module codegen is building.
        dtype: "f32"/"f64", a numpy dtype, or ll.FloatType()/ll.DoubleType().

    Returns:
        A function with the signature of `gemm_type(dtype)`.

    Raises:
        RuntimeError: if no BLAS was found.
    """
    register()
    t = _type_key(dtype)
    return declare_gemm(module, t, _require(), SYMBOLS[t])


def declare_gemm(module: ll.Module, t: str, found: Binding, symbol: str) -> ll.Function:
    """Emit the fixed-signature gemm for binding `found`, whose entry is registered as `symbol`."""
    fnty = gemm_type(_float_type(t))
    if found.layout == "cblas" and found.int_bits == 64:
        return _get_or_declare(module, symbol, fnty)
    name = f"{symbol}_rowmajor_i64"
    if name in module.globals:
        return module.globals[name]
    wrapper = ll.Function(module, fnty, name)
    wrapper.linkage = "internal"
    bld = ll.IRBuilder(wrapper.append_basic_block("entry"))
    if found.layout == "cblas":
        _emit_cblas32_call(bld, module, symbol, wrapper.args)
    else:
        _emit_fortran_call(bld, module, symbol, found.int_bits, wrapper.args)
    bld.ret_void()
    return wrapper


def _get_or_declare(module: ll.Module, name: str, fnty: ll.FunctionType) -> ll.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ll.Function(module, fnty, name)


def _emit_cblas32_call(bld: ll.IRBuilder, module: ll.Module, symbol: str, args) -> None:
    """LP64 CBLAS: same arguments with the sizes truncated to i32."""
    i32 = ll.IntType(32)
    sizes = {3, 4, 5, 8, 10, 13}  # positions of m, n, k, lda, ldb, ldc
    types = [i32 if i in sizes else a.type for i, a in enumerate(args)]
    callee = _get_or_declare(module, symbol, ll.FunctionType(ll.VoidType(), types))
    bld.call(callee, [bld.trunc(a, i32) if i in sizes else a for i, a in enumerate(args)])


def _emit_fortran_call(bld: ll.IRBuilder, module: ll.Module, symbol: str, int_bits: int,
                       args) -> None:
    """Fortran gemm (column-major, all by reference): C^T = op(B)^T op(A)^T for row-major.

    Row-major C (m x n) is column-major C^T (n x m) with the same ldc, and the same holds for
    A and B, so a row-major call swaps A<->B, m<->n and the two transpose flags.
    """
    order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc = args
    row = bld.icmp_signed("!=", order, ll.Constant(order.type, COL_MAJOR))
    index = ll.IntType(int_bits)

    def by_ref(value, ty):
        slot = bld.alloca(ty)
        bld.store(value if value.type == ty else bld.trunc(value, ty), slot)
        return slot

    def trans_char(flag):
        is_n = bld.icmp_signed("==", flag, ll.Constant(flag.type, NO_TRANS))
        return bld.select(is_n, ll.Constant(ll.IntType(8), ord("N")),
                          ll.Constant(ll.IntType(8), ord("T")))

    char_a, char_b = trans_char(ta), trans_char(tb)
    operands = [
        by_ref(bld.select(row, char_b, char_a), ll.IntType(8)),
        by_ref(bld.select(row, char_a, char_b), ll.IntType(8)),
        by_ref(bld.select(row, n, m), index), by_ref(bld.select(row, m, n), index),
        by_ref(k, index), by_ref(alpha, alpha.type),
        bld.select(row, b, a), by_ref(bld.select(row, ldb, lda), index),
        bld.select(row, a, b), by_ref(bld.select(row, lda, ldb), index),
        by_ref(beta, beta.type), c, by_ref(ldc, index),
    ]
    # NOTE: gfortran-ABI callers pass the hidden lengths of the two CHARACTER arguments; OpenBLAS's
    # C implementation ignores them, and passing them keeps reference Fortran BLAS happy too.
    ones = [ll.Constant(ll.IntType(64), 1)] * 2
    fnty = ll.FunctionType(ll.VoidType(), [ll.PointerType()] * 13 + [ll.IntType(64)] * 2)
    bld.call(_get_or_declare(module, symbol, fnty), operands + ones)


# --------------------------------------------------------------------------- ctypes entry points

@functools.lru_cache(maxsize=None)
def _cfunc(address: int, layout: str, int_bits: int, t: str):
    """A ctypes prototype bound to a gemm entry (cached: building one costs a few microseconds)."""
    index = ctypes.c_int64 if int_bits == 64 else ctypes.c_int32
    real = ctypes.c_float if t == "s" else ctypes.c_double
    ptr = ctypes.c_void_p
    if layout == "cblas":
        argtypes = [ctypes.c_int] * 3 + [index] * 3 + [real, ptr, index, ptr, index, real,
                                                        ptr, index]
    else:
        argtypes = [ptr] * 13 + [ctypes.c_size_t] * 2
    return ctypes.CFUNCTYPE(None, *argtypes)(address)


def _operand(x: np.ndarray) -> tuple[int, np.ndarray, int]:
    """(transpose flag, buffer, leading dimension) for a 2-d operand without copying if we can."""
    if x.flags.c_contiguous:
        return NO_TRANS, x, max(1, x.shape[1])
    if x.flags.f_contiguous:
        return TRANS, x, max(1, x.shape[0])
    x = np.ascontiguousarray(x)
    return NO_TRANS, x, max(1, x.shape[1])


def _call(found: Binding, t: str, ta: int, tb: int, m: int, n: int, k: int,
          a: np.ndarray, lda: int, b: np.ndarray, ldb: int, c: np.ndarray, ldc: int) -> None:
    """C = op(A) @ op(B) through `found`, row-major, via ctypes (releases the GIL)."""
    fn = _cfunc(found.addresses[t], found.layout, found.int_bits, t)
    if found.layout == "cblas":
        fn(ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0,
           c.ctypes.data, ldc)
        return
    index = ctypes.c_int64 if found.int_bits == 64 else ctypes.c_int32
    real = ctypes.c_float if t == "s" else ctypes.c_double
    chars = {NO_TRANS: b"N", TRANS: b"T"}
    refs = [ctypes.c_char(chars[tb]), ctypes.c_char(chars[ta]), index(n), index(m), index(k),
            real(1.0), index(ldb), index(lda), real(0.0), index(ldc)]
    p = [ctypes.addressof(r) for r in refs]
    fn(p[0], p[1], p[2], p[3], p[4], p[5], b.ctypes.data, p[6], a.ctypes.data, p[7], p[8],
       c.ctypes.data, p[9], 1, 1)


def matmul(a: np.ndarray, b: np.ndarray, found: Binding | None = None) -> np.ndarray:
    """A @ B for 2-d float32/float64 arrays through BLAS (C- or Fortran-ordered inputs, no copy).

    Args:
        a, b: 2-d arrays of one dtype, float32 or float64, with a.shape[1] == b.shape[0].
        found: a specific binding (tests use this for the Fortran path); default `binding()`.

    Raises:
        RuntimeError: if no BLAS was found. ValueError/TypeError: on bad shapes or dtypes.
    """
    found = found or _require()
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"BLAS matmul: bad shapes {a.shape} @ {b.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"BLAS matmul: dtypes differ ({a.dtype} vs {b.dtype})")
    t = _type_key(a.dtype)
    (m, k), n = a.shape, b.shape[1]
    if m == 0 or n == 0 or k == 0:
        return np.zeros((m, n), a.dtype)
    c = np.empty((m, n), a.dtype)
    ta, a_buf, lda = _operand(a)
    tb, b_buf, ldb = _operand(b)
    _call(found, t, ta, tb, m, n, k, a_buf, lda, b_buf, ldb, c, n)
    return c


# --------------------------------------------------------------------------- threads

# MKL's C names for the same two calls (a NumPy built against MKL binds libmkl_rt).
_MKL_THREAD_FUNCTIONS = {"get_num_threads": "MKL_Get_Max_Threads",
                         "set_num_threads": "MKL_Set_Num_Threads"}


def _thread_function(what: str):
    """The library's `what` ("get_num_threads"/"set_num_threads"), OpenBLAS's or MKL's."""
    found = binding()
    if not (found and found.lib):
        return None
    fn = _openblas_function(found.lib, what)
    if fn is None and hasattr(found.lib, _MKL_THREAD_FUNCTIONS[what]):
        fn = getattr(found.lib, _MKL_THREAD_FUNCTIONS[what])
    return fn


def get_num_threads() -> int | None:
    """The BLAS's current thread count, or None if the library cannot report it."""
    fn = _thread_function("get_num_threads")
    return int(fn()) if fn else None


def set_num_threads(n: int) -> bool:
    """Set the BLAS's process-wide thread count (shared with NumPy); False if unsupported."""
    if n < 1:
        raise ValueError(f"BLAS set_num_threads: need n >= 1, got {n}")
    fn = _thread_function("set_num_threads")
    if not fn:
        return False
    fn.argtypes = [ctypes.c_int]
    fn(int(n))
    return True


def apply_thread_setting() -> int | None:
    """Gives the BLAS GRADJIT_BLAS_THREADS threads (default 1; `keep`: untouched).

    Called when gradjit binds the BLAS for its kernels (`register`). Returns the count set,
    or None when the setting is `keep` or the library has no thread control.
    """
    n = config.blas_threads()
    if n is None or not set_num_threads(n):
        return None
    return n


