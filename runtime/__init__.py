"""gradjit's runtime: compiles IR Functions to native code and runs them on NumPy arrays.

    exe = runtime.compile(fn)           # cached by fn's structure
    outs = exe(x, w)                    # list of new np.ndarray
    low = runtime.lower(fn)             # .ir, .llvm_ir, .optimized_llvm_ir, .compile()

Settings (GRADJIT_BACKEND, GRADJIT_BOUNDS_CHECK, GRADJIT_LOG, ...): runtime/config.py.
"""
from __future__ import annotations

from ir.core import Function, walk_ops
from ir.passes import optimize as optimize_function
from runtime import blas_tiles, config, phases, threads, tiers
from runtime.compile_cache import CompileCache, canonical_text
from runtime.config import log, logging_enabled
from runtime.disk_cache import DISK
from runtime.engine import (CompileError, Engine, TargetError, create_execution_engine,
                            target_from_env, vector_bytes as _vector_bytes)
from runtime.executable import BoundsError, Executable, InterpretedExecutable

_CACHE = CompileCache()
threads.reinit_after_fork(_CACHE)    # its lock is held for a whole compile


def _bounds_check(flag) -> bool:
    return config.bounds_check() if flag is None else bool(flag)


# the ops whose code calls a native library (codegen/dots.py's gemm, codegen/lapack.py)
_NATIVE_OPS = frozenset({"dot_general", "cholesky", "triangular_solve", "lu", "qr", "eigh",
                         "svd"})


def externals(fn: Function | None = None) -> Externals:
    """The native functions generated code may call: NumPy's BLAS gemm and LAPACK (LAPACKE)
    when they were found. Given fn without a dot or a linear-algebra op, none: finding the
    BLAS (~3-5 ms of a fresh process's first compile) is then skipped, and no code differs."""
    from codegen.dots import Externals
    from runtime import shared_code
    shared_code.install()            # the trig rare path: linked, not carried (shared_code.py)
    if fn is not None and not any(op.prim.name in _NATIVE_OPS for op in walk_ops(fn)):
        return Externals(gemm=None, lapack=None, exact_rows=None)
    from runtime import blas, blas_split, lapack
    gemm = blas.available()
    return Externals(gemm=blas.llvm_declaration if gemm else None,
                     lapack=lapack.llvm_declaration if lapack.available() else None,
                     exact_rows=blas_split.exact_rows if gemm else None,
                     vector_bytes=_vector_bytes(create_execution_engine().features or ""),
                     tiles=blas_tiles.llvm_declaration if gemm else None)


# False: tile gemm builds start when lowering declares them (tests, A/B comparisons)
PREFETCH_TILES = True


def build_executable(fn: Function, kernel: KernelSource | None = None,
                     bounds_check: bool = False, vmath: bool = True) -> Executable:
    """Lowers (unless kernel is given), JIT-compiles and wraps fn; no caching."""
    with phases.phase("import codegen"):
        # NOTE: late: a disk-cache hit needs no codegen
        from codegen import lower_function, tile_needs
    if kernel is None:
        with phases.phase("codegen"), blas_tiles.prefetching():
            needs, plans = [], None
            if PREFETCH_TILES:        # (the plans made to predict them: not made again)
                needs, plans = tile_needs.tile_keys_and_plans(fn, externals(fn))
                blas_tiles.prefetch(needs)
            kernel = lower_function(fn, bounds_check=bounds_check, externals=externals(fn),
                                    vmath=vmath, canonical=canonical_text(fn), plans=plans)
        if not blas_tiles.settle(kernel.llvm_ir):    # its tile gemm failed: the BLAS instead
            with phases.phase("codegen"):
                kernel = lower_function(fn, bounds_check=bounds_check, externals=externals(fn),
                                        vmath=vmath, canonical=canonical_text(fn))
        _log_kernels(fn)
    with phases.phase("llvm setup"):
        engine = create_execution_engine()
    level = tiers.counted(tiers.speed_level(fn))      # O1 or O3 (runtime/tiers.py)
    config.event("tier", f"  @{fn.name}: LLVM pipeline O{level}", function=fn.name, level=level)
    with phases.phase("llvm"):
        address, = engine.compile([kernel.llvm_ir], [kernel.entry], kernel.entry, level)
    exe = Executable(fn, kernel, address, True, bounds_check, engine,
                     uses_pool=uses_pool(kernel.llvm_ir))
    engine.hold(exe, kernel.entry)          # the code is freed with the last Executable
    return exe


def uses_pool(llvm_ir: str) -> bool:
    """Whether a kernel's code can hand tasks to the thread pool: only gj.parallel_for
    (codegen/loops.py) reads the pool's entry from the workspace header."""
    return "gj.parallel_for" in llvm_ir


def _log_kernels(fn: Function):
    """GRADJIT_LOG: one line per generated kernel (codegen/report.py's fusion report)."""
    if not logging_enabled():
        return
    from codegen.report import fusion_report
    for k in fusion_report(fn, externals(fn)).kernels:
        ops = ", ".join(op.prim.name for op in k.ops[:6]) + (" ..." if len(k.ops) > 6 else "")
        space = f" over [{','.join(map(str, k.space))}]" if k.space is not None else ""
        config.event("kernel", f"  @{fn.name} kernel {k.index}: {k.kind}{space}: {ops} "
                     f"(reads {k.bytes_read} B, writes {k.bytes_written} B)",
                     function=fn.name, index=k.index, kind=k.kind, ops=len(k.ops),
                     bytes_read=k.bytes_read, bytes_written=k.bytes_written)


def compile(fn: Function, bounds_check: bool | None = None, optimize: bool = False,
            vmath: bool = True) -> Executable:
    """The Executable of fn, from the cache when a structurally identical fn was compiled.

    The backend is GRADJIT_BACKEND's (runtime.config): native code, or the reference
    interpreter behind the same argument checks.

    Args:
        fn: the Function to compile.
        bounds_check: check buffer indices at run time (default: GRADJIT_BOUNDS_CHECK).
        optimize: run ir.passes.optimize on fn first (only on a cache miss).
        vmath: transcendentals as codegen.vmath's vectorisable code, else libm (codegen's
            lower_function); part of the cache keys.
    Raises:
        CompileError: LLVM rejected the generated code (a gradjit bug).
        ValueError: GRADJIT_BACKEND is neither 'native' nor 'interpret'.
    """
    backend, bc = config.backend(), _bounds_check(bounds_check)
    if backend == "interpret":
        def build(f, key):
            return InterpretedExecutable(f)
    else:
        def build(f, key):
            return DISK.load_or_build(f, key, bc, lambda: build_executable(
                f, bounds_check=bc, vmath=vmath), vmath=vmath)
    return _CACHE.get_or_build(fn, (backend, bc, vmath, *target_from_env()), build,
                               optimize_function if optimize else None)


class LoweredFunction:
    """fn lowered but not yet compiled: `.ir`, `.llvm_ir`, `.optimized_llvm_ir`, `.compile()`.
    (jit(f).lower() is tracer.staging's Lowered, which holds one of these.)"""

    def __init__(self, fn: Function, bounds_check: bool | None = None, vmath: bool = True):
        self.ir = fn
        self.bounds_check = _bounds_check(bounds_check)
        self.vmath = vmath
        from codegen import lower_function
        self.kernel = lower_function(fn, bounds_check=self.bounds_check,
                                     externals=externals(fn),
                                     vmath=vmath)

    @property
    def llvm_ir(self) -> str:
        """The LLVM IR as emitted, before optimisation."""
        return self.kernel.llvm_ir

    @property
    def optimized_llvm_ir(self) -> str:
        """The LLVM IR after the pipeline compiling uses (runtime/tiers.py), for the host CPU."""
        engine = create_execution_engine()
        return engine.optimized_text(self.kernel.llvm_ir, self.kernel.entry,
                                     tiers.speed_level(self.ir))

    @property
    def assembly(self) -> str:
        """The target CPU's assembly (GRADJIT_TARGET_CPU, else the host's); never run."""
        engine = create_execution_engine()
        return engine.assembly(self.kernel.llvm_ir, self.kernel.entry, tiers.speed_level(self.ir))

    def compile(self) -> Executable:
        return compile(self.ir, bounds_check=self.bounds_check, vmath=self.vmath)

    def fusion_report(self):
        """The kernels of this program (codegen.report.FusionReport: print it, .to_dot())."""
        from codegen.report import fusion_report
        return fusion_report(self.ir, externals(self.ir), self.ir.primal)


def lower(fn: Function, bounds_check: bool | None = None, vmath: bool = True) -> LoweredFunction:
    return LoweredFunction(fn, bounds_check, vmath)


def cache_info() -> dict:
    """Counters of the compile caches: hits, misses, compiles, compile_seconds, entries
    (programs held), evictions; disk_hits, disk_misses, disk_writes."""
    return dict(_CACHE.info(), disk_hits=DISK.hits, disk_misses=DISK.misses,
                disk_writes=DISK.writes)


def clear_cache():
    _CACHE.clear()


__all__ = ["compile", "lower", "LoweredFunction", "Executable", "InterpretedExecutable",
           "cache_info", "clear_cache", "create_execution_engine", "Engine", "CompileError",
           "TargetError", "BoundsError", "log", "logging_enabled"]
