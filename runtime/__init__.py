"""gradjit's runtime: compiles IR Functions to native code and runs them on NumPy arrays.

    exe = runtime.compile(fn)           # cached by fn's structure
    outs = exe(x, w)                    # list of new np.ndarray
    low = runtime.lower(fn)             # .ir, .llvm_ir, .optimized_llvm_ir, .compile()

Environment: GRADJIT_BACKEND=interpret runs the reference interpreter instead of native
code; GRADJIT_BOUNDS_CHECK=1 compiles kernels that check every buffer index;
GRADJIT_LOG=1 logs compiles and cache hits/misses to the "gradjit" logger.
"""
from __future__ import annotations

import os

from ir.core import Function
from runtime.cache import CompileCache, log, logging_enabled, structural_key
from runtime.disk_cache import DISK
from runtime.engine import (CompileError, Engine, TargetError, create_execution_engine,
                            target_from_env)
from runtime import threads
from runtime.executable import (TRAMPOLINE_OK, BoundsError, Executable, InterpretedExecutable,
                                trampoline_ir)

_CACHE = CompileCache()
threads.reinit_after_fork(_CACHE)    # its lock is held for a whole compile


def _backend() -> str:
    backend = os.environ.get("GRADJIT_BACKEND", "native") or "native"
    if backend not in ("native", "interpret"):
        raise ValueError(f"GRADJIT_BACKEND={backend!r}: expected 'native' or 'interpret'")
    return backend


def _bounds_check(flag) -> bool:
    if flag is not None:
        return bool(flag)
    return os.environ.get("GRADJIT_BOUNDS_CHECK", "") not in ("", "0")


def externals() -> Externals:
    """The native functions generated code may call: NumPy's BLAS gemm when it was found."""
    from codegen.dots import Externals
    from runtime import blas
    return Externals(gemm=blas.llvm_declaration if blas.available() else None)


def build_executable(fn: Function, kernel: KernelSource | None = None,
                     bounds_check: bool = False) -> Executable:
    """Lowers (unless kernel is given), JIT-compiles and wraps fn; no caching."""
    from codegen import lower_function      # NOTE: imported late: a disk-cache hit needs no codegen
    kernel = kernel or lower_function(fn, bounds_check=bounds_check, externals=externals())
    engine = create_execution_engine()
    texts, symbols = [kernel.llvm_ir], [kernel.entry]
    if TRAMPOLINE_OK:
        text, name = trampoline_ir(kernel.entry, len(kernel.in_types) + len(kernel.out_types))
        texts.append(text)
        symbols.append(name)
    addresses = engine.compile(texts, symbols, kernel.entry)
    tramp = addresses[1] if TRAMPOLINE_OK else None
    return Executable(fn, kernel, addresses[0], tramp, bounds_check, engine)


def compile(fn: Function, bounds_check: bool | None = None) -> Executable:
    """The Executable of fn, from the cache when a structurally identical fn was compiled.

    Args:
        fn: the Function to compile.
        bounds_check: check buffer indices at run time (default: env GRADJIT_BOUNDS_CHECK).
    Raises:
        CompileError: LLVM rejected the generated code (a gradjit bug).
    """
    backend, bc = _backend(), _bounds_check(bounds_check)
    key = structural_key(fn, backend, bc, *target_from_env())
    if backend == "interpret":
        return _CACHE.get_or_build(key, lambda: InterpretedExecutable(fn), fn.name)
    return _CACHE.get_or_build(key, lambda: DISK.load_or_build(
        fn, key, bc, lambda: build_executable(fn, bounds_check=bc)), fn.name)


class Lowered:
    """fn lowered but not yet compiled: `.ir`, `.llvm_ir`, `.optimized_llvm_ir`, `.compile()`."""

    def __init__(self, fn: Function, bounds_check: bool | None = None):
        self.ir = fn
        self.bounds_check = _bounds_check(bounds_check)
        from codegen import lower_function
        self.kernel = lower_function(fn, bounds_check=self.bounds_check, externals=externals())

    @property
    def llvm_ir(self) -> str:
        """The LLVM IR as emitted, before optimisation."""
        return self.kernel.llvm_ir

    @property
    def optimized_llvm_ir(self) -> str:
        """The LLVM IR after the O3 pipeline for the host CPU."""
        engine = create_execution_engine()
        return engine.optimized_text(self.kernel.llvm_ir, self.kernel.entry)

    @property
    def assembly(self) -> str:
        """The target CPU's assembly (GRADJIT_TARGET_CPU, else the host's); never run."""
        engine = create_execution_engine()
        return engine.assembly(self.kernel.llvm_ir, self.kernel.entry)

    def compile(self) -> Executable:
        return compile(self.ir, bounds_check=self.bounds_check)

    def fusion_report(self):
        """The kernels of this program (codegen.report.FusionReport: print it, .to_dot())."""
        from codegen.report import fusion_report
        return fusion_report(self.ir, externals(), self.ir.primal)


def lower(fn: Function, bounds_check: bool | None = None) -> Lowered:
    return Lowered(fn, bounds_check)


def cache_info() -> dict:
    """Counters of the compile cache: hits, misses, compiles, compile_seconds, entries."""
    return _CACHE.info()


def clear_cache():
    _CACHE.clear()


__all__ = ["compile", "lower", "Lowered", "Executable", "InterpretedExecutable", "cache_info",
           "clear_cache", "create_execution_engine", "Engine", "CompileError", "TargetError",
           "BoundsError",
           "log", "logging_enabled"]
