"""codegen.gemm_tiles' product functions, compiled once per process and called by kernels.

Three functions per dtype, each built only when a kernel needs it: the plain tiles and the
packed ones (codegen.gemm_pack) for B as stored and for B transposed. Kernels declare one
(`llvm_declaration`) and call it as they would the BLAS's gemm; the first kernel that needs
one builds it (`provide`): its object code comes from the disk cache
(runtime.disk_cache.load_or_store_object, under the source hash, LLVM's version
and the target), else it is compiled (~30-60 ms) and stored, then linked into an
MCJIT of its own, kept for the life of the process, and its address registered under the
symbol, so every kernel's MCJIT (and object code loaded from the disk cache: disk_cache's
_provide) resolves it.

The code is for the engine's target (GRADJIT_TARGET_CPU: AVX2 tiles for haswell), as the
kernels that call it. A failure to build it is logged and kernels call the BLAS instead.
"""
from __future__ import annotations

import contextlib
import threading

import llvmlite
import llvmlite.binding as llvm

from runtime import config, llvm_split, phases
from runtime.disk_cache import compiled_object, linked, load_or_store_object, source_hash
from runtime.engine import LLVM_LOCK, create_execution_engine, vector_bytes

# NOTE: codegen is imported late: a warm start that loads kernels from the disk cache
# needs only the symbols, not codegen
# (dtype, packed, b_trans) -> symbol: gemm_tiles.symbol's (a test checks)
_SYMBOLS = {("f32", False, False): "gradjit_tiles_f32", ("f64", False, False): "gradjit_tiles_f64",
            ("f32", True, False): "gradjit_packed_f32", ("f64", True, False): "gradjit_packed_f64",
            ("f32", True, True): "gradjit_packed_bt_f32",
            ("f64", True, True): "gradjit_packed_bt_f64"}
SYMBOLS = frozenset(_SYMBOLS.values())
_state: dict = {}         # _SYMBOLS' key -> the MCJIT holding its function, or None (failed)
builds = 0                # times object code was compiled here (tests)
# NOTE: every MCJIT that add_symbol pointed the process at lives as long as the process:
# the symbol is global, and a kernel linked later resolves it to the last address given
# (a test that swapped _state for an empty dict freed the new function's code on restoring
# it, and a later kernel called freed memory)
_LINKED: list = []
PREFETCH = True           # False: always built on the lowering thread (tests, A/B comparisons)
_pending: dict = {}       # _SYMBOLS' key -> the helper thread building it
_pending_lock = threading.Lock()
_local = threading.local()   # .prefetch: this thread's lowering settles before linking
prefetched = [0]          # builds started on a helper thread (tests)


def llvm_declaration(module, dtype: str, packed: bool = False, b_trans: bool = False):
    """The tile function of dtype (packed: its packed one, for a transposed B when b_trans)
    declared in module, or None when it cannot be provided.
    Code for a target this host cannot run (only lowered, for its assembly) declares it
    without building it: that code never runs here."""
    gemm_tiles = _codegen()
    b_trans = bool(packed and b_trans)
    if create_execution_engine().runnable_problem is None and not _provided_or_started(
            dtype, packed, b_trans):
        return None
    return gemm_tiles.declare(module, dtype, packed, b_trans)


@contextlib.contextmanager
def prefetching():
    """Lowering inside the block may declare a tile function whose build has only started
    (on a helper thread, when a core is idle): the caller must `settle` the kernel's text
    before linking it. NOTE: ~31 ms of LLVM (mlp's, lstm's packed tiles) then overlaps the
    rest of codegen instead of lengthening the first call."""
    outer = getattr(_local, "prefetch", False)
    _local.prefetch = True
    try:
        yield
    except BaseException:
        # NOTE: lowering failed, so nothing will settle: a build must not outlive it
        # unjoined (a daemon thread inside LLVM at interpreter exit)
        with _pending_lock:
            started = list(_pending.values())
        for thread in started:
            llvm_split.join(thread)
        raise
    finally:
        _local.prefetch = outer


def prefetch(keys: list):
    """Inside `prefetching`, before lowering: starts the builds of the tile functions `keys`
    (codegen.tile_needs' (dtype, packed, b_trans), which lowering will declare) on helper
    threads when a core is idle; otherwise nothing (lowering builds them as before)."""
    if keys and create_execution_engine().runnable_problem is None:
        for key in keys:
            _started(key)


def _started(key: tuple) -> bool:
    """Whether key's build is under way on a helper thread (started now if a core is idle,
    inside `prefetching`)."""
    if key not in _state and getattr(_local, "prefetch", False) and PREFETCH:
        with _pending_lock:
            if key in _pending:
                return True
            if key not in _state and llvm_split.idle_core():
                thread = threading.Thread(target=_build_quietly, args=key, daemon=True,
                                          name="gradjit-tile-gemm")
                _pending[key] = thread
                prefetched[0] += 1
                thread.start()
                return True
    return False


def _provided_or_started(dtype: str, packed: bool, b_trans: bool) -> bool:
    return _started((dtype, packed, b_trans)) or provide(dtype, packed, b_trans)


def _build_quietly(dtype: str, packed: bool, b_trans: bool):
    """provide() on the helper thread; an unexpected error is left for settle() to meet
    (it builds again on its own thread, where the error is raised or logged as before)."""
    try:
        provide(dtype, packed, b_trans)
    except Exception:       # noqa: BLE001 (rebuilt and reported by settle's provide)
        pass


def settle(llvm_ir: str) -> bool:
    """Waits for the tile functions kernel text declares; False when one of them could not
    be provided (the kernel must be lowered again: it calls the BLAS then)."""
    ok = True
    for key, symbol in _SYMBOLS.items():
        if f'@"{symbol}"(' not in llvm_ir and f"@{symbol}(" not in llvm_ir:
            continue          # (llvmlite quotes the names it prints)
        with _pending_lock:
            thread = _pending.get(key)
        if thread is not None:
            with phases.phase("tile gemm wait"):
                llvm_split.join(thread)
            with _pending_lock:
                _pending.pop(key, None)
        ok = provide(*key) and ok
    return ok


def provide_symbol(name: str) -> bool:
    """provide() for the function that is the symbol `name` (one of SYMBOLS)."""
    return provide(*next(key for key, symbol in _SYMBOLS.items() if symbol == name))


def provide(dtype: str, packed: bool = False, b_trans: bool = False) -> bool:
    """Links dtype's function (packed: its packed one, for a transposed B when b_trans) into
    the process once; True when its symbol resolves."""
    key = (dtype, packed, packed and b_trans)
    with LLVM_LOCK:
        if key not in _state:
            try:
                with phases.phase("tile gemm"):
                    _state[key] = _link(*key)
            except RuntimeError as e:
                config.log.warning("gradjit: tile gemm %s unavailable (%s); kernels call the "
                                   "BLAS", _SYMBOLS[key], e)
                _state[key] = None
        return _state[key] is not None


def _link(dtype: str, packed: bool, b_trans: bool):
    engine = create_execution_engine()
    engine.check_runnable()
    symbol = _SYMBOLS[dtype, packed, b_trans]
    width = vector_bytes(engine.features or "")
    key = {"source": source_hash(), "symbol": symbol, "triple": engine.triple,
           "cpu": engine.cpu, "features": engine.features, "vector_bytes": width,
           "llvmlite": llvmlite.__version__,
           "llvm": ".".join(map(str, llvm.llvm_version_info))}

    def machine(opt: int = 3):   # NOTE: an MCJIT owns (and frees) its target machine: one each
        return engine.target.create_target_machine(cpu=engine.cpu, features=engine.features,
                                                   opt=opt)

    built: dict = {}
    obj = load_or_store_object(f"gj_{symbol}", key,
                               lambda: _build(machine(1), (dtype, packed, b_trans), width,
                                              built))
    jit = linked(obj, lambda: machine(0), built)
    address = jit.get_function_address(symbol)
    if not address:
        raise RuntimeError(f"{symbol} is missing from its object code")
    llvm.add_symbol(symbol, address)
    _LINKED.append(jit)
    return jit


def _build(machine, key: tuple, width: int, built: dict) -> bytes:
    """The function's object code. NOTE: its IR goes to machine code as emitted (phis, no
    stack slots): LLVM's pipeline made it no faster (O1 or O3, machine code at level 1 or 3,
    the same speed measured) and took ~half of a ~0.1 s build."""
    global builds
    builds += 1
    dtype, packed, b_trans = key
    text = _codegen().module_text(dtype, width, packed=packed, b_trans=b_trans)
    obj, built["jit"] = compiled_object(text, machine, _SYMBOLS[key])
    return obj


def _codegen():
    """codegen.gemm_tiles (NOTE: late: a warm start that loads kernels from the disk cache
    needs only the symbols, not codegen)."""
    from codegen import gemm_tiles
    return gemm_tiles
