"""The LLVM engine: one host target machine and one MCJIT compiler per process.

llvmlite 0.50 (LLVM 22): `llvm.initialize()` raises, so only the native target and asm
printer are initialised; optimisation uses the new pass manager at O3 tuned for the host
CPU (its name and features, so AVX2/AVX-512 are used where present). Modules are parsed,
verified, optimised, added to the one MCJIT and finalised; their entry addresses stay valid
for the life of the process. libm functions referenced by kernels are resolved from the
process itself.
"""
from __future__ import annotations

import ctypes.util
import threading

import llvmlite.binding as llvm

_ENGINE = None
_ENGINE_LOCK = threading.Lock()


class CompileError(RuntimeError):
    """LLVM rejected a kernel (a code generator bug): the message names the step and kernel."""


class Engine:
    """The host target machine and the process's MCJIT; thread-safe."""

    def __init__(self):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _load_libm()
        self.triple = llvm.get_process_triple()
        self.cpu = llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten()
        target = llvm.Target.from_triple(self.triple)
        self.target_machine = target.create_target_machine(
            cpu=self.cpu, features=self.features, opt=3)
        self.data_layout = str(self.target_machine.target_data)
        self.mcjit = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self.target_machine)
        self.lock = threading.RLock()
        self.addresses: dict = {}       # symbol -> address of everything added so far
        self.modules = []               # keeps added modules alive with the engine

    def parse(self, llvm_ir: str, name: str) -> llvm.ModuleRef:
        """Parses and verifies module text, retargeted to the host."""
        try:
            mod = llvm.parse_assembly(llvm_ir)
        except RuntimeError as e:
            raise CompileError(f"LLVM could not parse kernel '{name}':\n{e}") from None
        mod.triple = self.triple
        mod.data_layout = self.data_layout
        try:
            mod.verify()
        except RuntimeError as e:
            raise CompileError(f"LLVM verification failed for kernel '{name}':\n{e}") from None
        return mod

    def optimize(self, mod: llvm.ModuleRef) -> llvm.ModuleRef:
        """Runs the O3 pipeline (new pass manager) on mod in place."""
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pto.loop_unrolling = False
        pb = llvm.create_pass_builder(self.target_machine, pto)
        pb.getModulePassManager().run(mod, pb)
        return mod

    def optimized_text(self, llvm_ir: str, name: str = "kernel") -> str:
        """The optimised form of module text (for inspection; nothing is added to the JIT)."""
        return str(self.optimize(self.parse(llvm_ir, name)))

    def compile(self, texts: list, symbols: list, name: str) -> list:
        """Links module texts into one, optimises it, JITs it; returns the symbols' addresses.

        A symbol compiled before (the same kernel text after clear_cache, say) is not added
        again: MCJIT would see a duplicate definition; the earlier address is returned.
        """
        with self.lock:
            if all(s in self.addresses for s in symbols):
                return [self.addresses[s] for s in symbols]
            mod = self.parse(texts[0], name)
            for text in texts[1:]:
                mod.link_in(self.parse(text, name))
            self.optimize(mod)
            self.mcjit.add_module(mod)
            self.mcjit.finalize_object()
            self.modules.append(mod)
            for s in symbols:
                self.addresses[s] = self.mcjit.get_function_address(s)
            return [self.addresses[s] for s in symbols]


def _load_libm():
    """Makes libm's symbols (tanhf, log1p, ...) visible to the JIT's symbol resolution.

    The Python process has libm loaded already; loading it by name again is harmless and
    keeps kernels working in an embedding process that does not.
    """
    name = ctypes.util.find_library("m")
    if name:
        try:
            llvm.load_library_permanently(name)
        except RuntimeError:
            pass


def create_execution_engine() -> Engine:
    """The process-wide Engine, created on first use (llvmlite's documented JIT recipe)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = Engine()
        return _ENGINE


def fresh_execution_engine() -> Engine:
    """Replaces the process-wide Engine by a new one that has compiled nothing yet.

    For measuring cold compiles: the Engine shares code by symbol, so compiling a kernel
    again in the same Engine costs nothing. Code from the old Engine stays valid as long as
    the Executables holding it live.
    """
    global _ENGINE
    with _ENGINE_LOCK:
        _ENGINE = Engine()
        return _ENGINE
