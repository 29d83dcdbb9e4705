"""LAPACK through the library NumPy already links, callable from JIT-compiled code.

runtime/blas.py finds NumPy's OpenBLAS; that library also exports LAPACKE, the C interface
of LAPACK (in NumPy's wheels ILP64 and prefixed: ``scipy_LAPACKE_dgetrf64_``; other builds
spell it ``LAPACKE_dgetrf64_`` or ``LAPACKE_dgetrf``). LAPACKE takes row-major matrices
(layout 101), allocates LAPACK's workspaces itself and rejects NaN inputs (an info < 0), so
generated code calls it directly. The entries are registered with llvmlite under fixed
names, ``gradjit_lapacke_<s|d><routine>``, and codegen declares them through
``llvm_declaration`` with one signature whatever the library's integer width:

    i64 routine(i32 layout, args...)    ; LAPACKE's int arguments as i64, chars as i8

For an LP64 library an internal adapter truncates the sizes (integer arrays such as getrf's
pivots then hold i32: `llvm_declaration` also returns the width). The routines used:

    getrf(layout, m, n, a, lda, ipiv)                       LU with partial pivoting
    potrf(layout, uplo, n, a, lda)                          Cholesky
    trtrs(layout, uplo, trans, diag, n, nrhs, a, lda, b, ldb)   triangular solve
    geqrf(layout, m, n, a, lda, tau) / orgqr(layout, m, n, k, a, lda, tau)   QR
    syevd(layout, jobz, uplo, n, a, lda, w)                 symmetric eigendecomposition
    gesdd(layout, jobz, m, n, a, lda, s, u, ldu, vt, ldvt)  SVD (divide and conquer)
"""
from __future__ import annotations

import ctypes
import functools

import llvmlite.binding as llvm
from llvmlite import ir as ll

from runtime import blas

# argument kinds after the i32 layout: I (lapack_int), C (char), P (pointer)
SIGNATURES = {"getrf": "IIPIP", "potrf": "CIPI", "trtrs": "CCCIIPIPI", "geqrf": "IIPIP",
              "orgqr": "IIIPIP", "syevd": "CCIPIP", "gesdd": "CIIPIPPIPI"}
_PATTERNS = [("scipy_LAPACKE_{r}64_", 64), ("LAPACKE_{r}64_", 64), ("LAPACKE_{r}_64", 64),
             ("scipy_LAPACKE_{r}", None), ("LAPACKE_{r}", None)]
_PREFIX = {"f32": "s", "f64": "d"}


def symbol(routine: str, dtype: str) -> str:
    """The fixed name generated code calls, e.g. gradjit_lapacke_dgetrf."""
    return f"gradjit_lapacke_{_PREFIX[dtype]}{routine}"


@functools.cache
def binding() -> tuple[dict, int] | None:
    """({fixed name: address}, int bits) of every routine, from BLAS's library, or None."""
    found = blas.binding()
    if found is None or found.lib is None:
        return None
    for pattern, bits in _PATTERNS:
        names = {symbol(r, dt): pattern.format(r=_PREFIX[dt] + r)
                 for r in SIGNATURES for dt in _PREFIX}
        if all(hasattr(found.lib, n) for n in names.values()):
            addresses = {fixed: ctypes.cast(getattr(found.lib, real), ctypes.c_void_p).value
                         for fixed, real in names.items()}
            return addresses, bits or found.int_bits
    return None


def available() -> bool:
    """True when NumPy's library exports every LAPACKE routine gradjit calls."""
    return binding() is not None


@functools.cache
def register() -> int:
    """Registers the gradjit_lapacke_* symbols with llvmlite (once); returns the int bits.

    Raises:
        RuntimeError: NumPy's library has no LAPACKE.
    """
    found = binding()
    if found is None:
        raise RuntimeError("LAPACK: no LAPACKE routines found in NumPy's BLAS library "
                           f"({blas.binding() and blas.binding().path})")
    for name, address in found[0].items():
        llvm.add_symbol(name, address)
    return found[1]


def _types(routine: str, bits: int) -> list:
    kinds = {"I": ll.IntType(bits), "C": ll.IntType(8), "P": ll.PointerType()}
    return [ll.IntType(32)] + [kinds[k] for k in SIGNATURES[routine]]


def llvm_declaration(module: ll.Module, routine: str, dtype: str) -> tuple[ll.Function, int]:
    """(the routine for dtype declared in module with i64 sizes, the library's int bits)."""
    bits = register()
    name = symbol(routine, dtype)
    fixed = ll.FunctionType(ll.IntType(64), _types(routine, 64))
    if bits == 64:
        existing = module.globals.get(name)
        return (existing or ll.Function(module, fixed, name)), bits
    wrapper_name = name + "_i64"
    if wrapper_name in module.globals:
        return module.globals[wrapper_name], bits
    real = module.globals.get(name) or ll.Function(
        module, ll.FunctionType(ll.IntType(32), _types(routine, 32)), name)
    wrapper = ll.Function(module, fixed, wrapper_name)
    wrapper.linkage = "internal"
    bld = ll.IRBuilder(wrapper.append_basic_block("entry"))
    args = [bld.trunc(a, t) if a.type != t else a for a, t in zip(wrapper.args, real.args)]
    bld.ret(bld.sext(bld.call(real, args), ll.IntType(64)))
    return wrapper, bits
