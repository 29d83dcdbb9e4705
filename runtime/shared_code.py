"""Helper functions that kernels call but no longer carry: compiled once per process.

The trig rare path (codegen/vmath_trig_huge.py's gradjit_trig_huge_f64, a Payne-Hanek
reduction compiled at O0) cost ~20 ms of machine code in every kernel that used sin, cos or
tan. `install()` (run before each lowering) tells codegen to declare it instead; the first
kernel that needs it calls `provide()`, which JIT-links the one definition into an MCJIT of
its own, kept for the life of the process, and registers its address under the symbol, so
every kernel's MCJIT (and object code loaded from the disk cache, runtime/disk_cache.py's
_provide) resolves it. Its object code is kept in the trusted disk cache as the thread
pool's is, so a later process only links it (no codegen import on a warm start).

The code is for the host CPU whatever GRADJIT_TARGET_CPU says: it runs only where kernels
run, which is on this host. A failure to build it is logged and kernels fall back to their
own copy.
"""
from __future__ import annotations

import llvmlite
import llvmlite.binding as llvm

from runtime import config, phases
from runtime.disk_cache import compiled_object, linked, load_or_store_object, source_hash
from runtime.engine import LLVM_LOCK

SYMBOLS = ("gradjit_trig_huge_f64",)     # codegen.vmath_trig_huge.HUGE_TRIG
_state: dict = {"ok": None, "jit": None}  # ok: None untried, True linked, False failed
builds = 0                                 # times the object code was made here (tests)


def install() -> None:
    """Kernels lowered from now on declare the shared helpers (provided on first use)."""
    trig = _trig_huge()
    if trig._provider is not provide:
        trig.use_shared(provide)


def _trig_huge():
    # NOTE: late: a disk-cache hit needs no codegen (provide() then loads object code)
    from codegen import vmath_trig_huge
    return vmath_trig_huge


def provide() -> bool:
    """Links the helpers into the process once; True when their symbols resolve."""
    with LLVM_LOCK:
        if _state["ok"] is None:
            try:
                with phases.phase("shared code"):
                    _state["jit"] = _link()
                _state["ok"] = True
            except RuntimeError as e:
                config.log.warning("gradjit: shared helper code unavailable (%s); kernels "
                                   "carry their own copy", e)
                _state["ok"] = False
        return _state["ok"]


def _link():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    triple = llvm.get_process_triple()
    target = llvm.Target.from_triple(triple)
    cpu, features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
    key = {"source": source_hash(), "symbols": list(SYMBOLS), "triple": triple, "cpu": cpu,
           "features": features, "llvmlite": llvmlite.__version__,
           "llvm": ".".join(map(str, llvm.llvm_version_info))}

    def machine(opt: int = 3):   # NOTE: an MCJIT owns (and frees) its target machine: one each
        return target.create_target_machine(cpu=cpu, features=features, opt=opt)

    built: dict = {}
    obj = load_or_store_object("gj_shared", key, lambda: _build(machine(), built))
    jit = linked(obj, lambda: machine(0), built)
    addresses = [jit.get_function_address(s) for s in SYMBOLS]
    if not all(addresses):
        raise RuntimeError("a symbol is missing from the shared helpers' object code")
    for symbol, address in zip(SYMBOLS, addresses):
        llvm.add_symbol(symbol, address)
    return jit


def _build(machine, built: dict) -> bytes:
    global builds
    builds += 1
    obj, built["jit"] = compiled_object(_trig_huge().helper_module_text(), machine, SYMBOLS[0])
    return obj
