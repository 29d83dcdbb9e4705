"""The LLVM engine: one target machine and one MCJIT compiler per process and target.

llvmlite 0.50 (LLVM 22): `llvm.initialize()` raises, so only the native target and asm
printer are initialised; optimisation uses the new pass manager at O3 tuned for the host
CPU (its name and features, so AVX2/AVX-512 are used where present). Modules are parsed,
verified, optimised, added to an MCJIT and finalised. libm functions referenced by kernels
are resolved from the process itself.

MCJIT never frees the code, the objects or the modules it was given (removing a module frees
the IR, not the code): memory would grow with every program a process ever compiled, even
once the compile cache has dropped it. So every compile gets its own small MCJIT (a `_Jit`,
~0.4 ms to make), counted by the Executables that use its code (`hold`), and closed, which
frees everything, when the last of them is garbage: never while an Executable (in a cache,
a jitted function's signature cache, a call plan) can still call into it.

    GRADJIT_TARGET_CPU=haswell          code for another CPU (an LLVM CPU name; "host": this one)
    GRADJIT_TARGET_FEATURES=-avx2,+fma  LLVM feature flags applied after the CPU's own

Code for a target is run only when LLVM itself says every feature the target enables is one
this host has (runnable_problem); otherwise it can be lowered and compiled to LLVM IR,
assembly or object code (runtime.lower(fn).optimized_llvm_ir / .assembly) but running it
raises TargetError: an instruction the host lacks would kill the process with SIGILL.

Every call gradjit makes into LLVM holds LLVM_LOCK; runtime.threads takes it around
os.fork(), so a child never inherits LLVM (or llvmlite's own lock) in the middle of a compile.
A compile's second thread and helper (runtime/llvm_split.py, when a core is idle) run while
the compiling thread holds it for them, and are joined before it is released.
"""
from __future__ import annotations

import ctypes.util
import weakref

import llvmlite.binding as llvm

from runtime import config, phases
from runtime.engine_targets import (LLVM_LOCK, TargetError, _runnable_problem,  # noqa: F401
                                    _resolve_target, enabled_features, known_targets,
                                    vector_bytes)



def _split():
    """runtime/llvm_split.py (NOTE: late: it imports the pool and trampolines, which import
    this module)."""
    from runtime import llvm_split
    return llvm_split
_ENGINES: dict = {}                 # (cpu, features) asked for -> Engine
machines = {1: 0, 3: 0}             # MCJITs made per machine-code level (tests read counters)
links = [0]                         # MCJITs made to link object code (disk-cache hits)


def codegen_level(speed_level: int) -> int:
    """The machine-code optimisation level for a pipeline level (runtime/tiers.py).

    NOTE: O1 programs (fused loops, BLAS calls) get machine code at level 1: ~15% less time
    in instruction selection, scheduling and register allocation (chain's value_and_grad
    ~30 -> ~25 ms) and the same speed measured (chain 1e6, mlp, gmm, lstm; 2-core Zen 3).
    O3 programs (control flow, sorts, linear algebra) keep level 3.
    """
    return 1 if speed_level <= 1 else 3


class CompileError(RuntimeError):
    """LLVM rejected a kernel (a code generator bug): the message names the step and kernel."""


class Engine:
    """A target machine (the host's unless cpu/features say otherwise) and its MCJIT;
    thread-safe.

    Args:
        cpu: an LLVM CPU name, or None for the host CPU (then features default to the
            host's features).
        features: LLVM feature flags ("+avx2,-fma") applied after the CPU's defaults.
    Raises:
        TargetError: an unknown CPU name or feature.
    """

    def __init__(self, cpu: str | None = None, features: str | None = None):
        with LLVM_LOCK:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _load_libm()
            self.triple = llvm.get_process_triple()
            self.host_cpu = llvm.get_host_cpu_name()
            self.host_features = llvm.get_host_cpu_features().flatten()
            self.cpu, self.features = _resolve_target(cpu, features, self.host_cpu,
                                                      self.host_features)
            self.target = llvm.Target.from_triple(self.triple)
            self.target_machine = self._machine()
            self.data_layout = str(self.target_machine.target_data)
            self.runnable_problem = _runnable_problem(self, features)
        self.lock = LLVM_LOCK
        self.addresses: dict = {}       # symbol -> address, for the symbols of live _Jits
        self._jits: dict = {}           # symbol -> the _Jit that defines it
        self._codes: dict = {}          # first symbol -> hash of the texts compiled for it
        self.object_cache = None        # (notify, getbuffer) for every new MCJIT (disk cache)

    def _machine(self, level: int = 3):
        return self.target.create_target_machine(cpu=self.cpu, features=self.features,
                                                 opt=codegen_level(level))

    def check_runnable(self):
        """Raises TargetError unless this host can execute code for the engine's target."""
        if self.runnable_problem is not None:
            raise TargetError(self.runnable_problem)

    def parse(self, llvm_ir: str, name: str, context=None) -> llvm.ModuleRef:
        """Parses and verifies module text, retargeted to the host (into LLVM's global
        context unless another is given)."""
        try:
            mod = llvm.parse_assembly(llvm_ir, context)
        except RuntimeError as e:
            raise CompileError(f"LLVM could not parse kernel '{name}':\n{e}") from None
        mod.triple = self.triple
        mod.data_layout = self.data_layout
        try:
            mod.verify()
        except RuntimeError as e:
            # NOTE: disposed now, while its context lives: the traceback keeps mod, and a
            # garbage collection that freed the context first crashed in mod's disposal
            mod.close()
            raise CompileError(f"LLVM verification failed for kernel '{name}':\n{e}") from None
        return mod

    def optimize(self, mod: llvm.ModuleRef, speed_level: int = 3,
                 own_context: bool = False, machine=None) -> llvm.ModuleRef:
        """Runs the O3 (or speed_level's: runtime/tiers.py) pipeline on mod in place.
        own_context: mod is in a context no other thread uses, so the pipeline runs outside
        llvmlite's global lock (llvm_split's helper thread compiles meanwhile). machine: a
        target machine of the caller's own (two pipelines at once must not share one: it
        caches subtargets unlocked), made as the engine's is."""
        pto = llvm.create_pipeline_tuning_options(speed_level=speed_level)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pto.loop_unrolling = False
        pb = llvm.create_pass_builder(machine or self.target_machine, pto)
        pm = pb.getModulePassManager()
        if own_context:
            _split().run_passes_unlocked(pm, mod, pb)
        else:
            pm.run(mod, pb)
        return mod

    def optimized_text(self, llvm_ir: str, name: str = "kernel", speed_level: int = 3) -> str:
        """The optimised form of module text (for inspection; nothing is added to the JIT)."""
        with self.lock:
            return str(self.optimize(self.parse(llvm_ir, name), speed_level))

    def assembly(self, llvm_ir: str, name: str = "kernel", speed_level: int = 3) -> str:
        """The target's assembly for module text, optimised (nothing is added to the JIT or
        run, so any target CPU works)."""
        with self.lock:
            return self._machine(speed_level).emit_assembly(
                self.optimize(self.parse(llvm_ir, name), speed_level))

    def object_code(self, llvm_ir: str, name: str = "kernel") -> bytes:
        """The target's object code for module text, optimised (never run)."""
        with self.lock:
            return self.target_machine.emit_object(self.optimize(self.parse(llvm_ir, name)))

    def compile(self, texts: list, symbols: list, name: str, speed_level: int = 3) -> list:
        """Links module texts into one, optimises it, JITs it; returns the symbols' addresses.

        The code stays until `release(symbols[0])` (see `hold`); a caller that never releases
        keeps it for the life of the engine. Symbols still live from an earlier compile (the
        same kernel text after clear_cache, say) are not compiled again: their addresses are
        returned, counted as one more use.
        """
        self.check_runnable()
        code = hash(tuple(texts))       # (a str caches its hash: ~free on a repeat)
        with self.lock:
            # NOTE: a live symbol serves only its own text: a codegen switch (a test's, an A/B
            # comparison) changes the code under one symbol, and reusing the first build's
            # machine code made such bitwise comparisons compare a build with itself
            if all(s in self.addresses for s in symbols) and self._codes.get(symbols[0]) == code:
                return self._reuse(symbols)
            # NOTE: a context of its own: LLVM's global one keeps every constant, type and
            # metadata node any module ever used (measured: ~60 KB per program, never freed)
            context = llvm.create_context()
            mod = self.parse(texts[0], name, context)
            try:
                for text in texts[1:]:
                    mod.link_in(self.parse(text, name, context))
            except BaseException:
                mod.close()          # (before its context: parse's NOTE)
                raise
            why: list = []          # why LLVM does not use two threads (GRADJIT_LOG)
            parallel = self._may_split(texts, why)
            cut = _split().plan(texts[0], symbols[0], why) if parallel else None
            # NOTE: the runtime code the program will need next (pool and trampolines, one
            # module) is compiled on a helper thread meanwhile, when a core is idle: ~10 ms
            # off chain's critical path for ~1-3 ms more CPU (a new thread's malloc arena
            # faults in fresh pages); joined before LLVM_LOCK is released
            helper = _split().start_helper(texts[0]) if parallel else None
            try:
                if cut is not None and _split().separable(cut, texts[0], why):
                    found = self._compile_split(mod, cut, symbols, speed_level, True)
                    if found is not None:
                        _log_split(name, "pass pipeline and machine code on two threads")
                        return found
                    why.append("a side's pipeline made a function the plan does not know; "
                               "parsed again")
                    mod = self.parse(texts[0], name, llvm.create_context())   # (refused)
                if cut is not None:
                    _log_split(name, f"pass pipeline on one thread ({why[-1]})")
                with phases.phase("llvm passes"):
                    self.optimize(mod, speed_level, own_context=True)
                if cut is not None and _split().usable_after_optimisation(cut, mod):
                    addresses = self._compile_split(mod, cut, symbols, speed_level)
                    _log_split(name, "machine code on two threads")
                    self._codes[symbols[0]] = code
                    return addresses
                if cut is not None:
                    why.append("the optimiser made a function the plan does not know")
                _split().counts["whole"] += 1
                _log_split(name, f"one thread ({why[-1]})")
                jit = self._new_jit(speed_level)
                jit.mcjit.add_module(mod)
                with phases.phase("machine code"):
                    jit.mcjit.finalize_object()
                addresses = self._define(jit, symbols)
                self._codes[symbols[0]] = code
                jit.mcjit.remove_module(mod)     # the code stays; the IR is freed with mod
                return addresses
            finally:
                if helper is not None:
                    _split().join(helper)

    @staticmethod
    def _may_split(texts: list, why: list) -> bool:
        if not (_split().ENABLED and len(texts) == 1):
            why.append("the split is off for this compile")
            return False
        if not _split().idle_core():
            why.append("no idle core")
            return False
        return True

    def _compile_split(self, mod, cut, symbols: list, speed_level: int,
                       pipeline: bool = False) -> list | None:
        """compile's machine code on two threads (runtime/llvm_split.py), JIT-linked into one
        MCJIT. pipeline: each side's pass pipeline too (mod not yet optimised); None (mod
        then unusable) when a side's pipeline made a function the plan does not know."""
        machines[codegen_level(speed_level)] += 1
        emit = [self._machine(speed_level), self._machine(speed_level)]
        passes = [self._machine(), self._machine()] if pipeline else []   # as target_machine
        with phases.phase("llvm passes + machine code" if pipeline else "machine code"):
            try:
                sides = (_split().optimise_split(mod, cut, emit, lambda side, k: self.optimize(
                    side, speed_level, True, passes[k])) if pipeline
                         else _split().emit_split(mod, cut, emit))
            except RuntimeError as e:
                raise CompileError(f"LLVM could not make machine code for kernel "
                                   f"'{symbols[0]}':\n{e}") from None
        if sides is None:
            _split().counts["pipeline_refused"] += 1
            return None
        _split().counts["split"] += 1
        _split().counts["pipeline_split"] += pipeline
        return self._link_sides(sides, symbols)

    def _link_sides(self, sides: list, symbols: list) -> list:
        """Both sides' objects JIT-linked into one MCJIT, and given to the disk cache's hook
        as MCJIT's own would be."""
        jit = self._new_jit(link_only=True, count=False)
        for obj, _side_module in sides:
            jit.mcjit.add_object_file(llvm.ObjectFileRef.from_data(obj))
        jit.mcjit.finalize_object()
        if self.object_cache is not None:
            for obj, side_module in sides:
                self.object_cache[0](side_module, obj)
        return self._define(jit, symbols)

    def load_objects(self, objects: list, symbols: list) -> list:
        """Object code (from the disk cache) JIT-linked; the symbols' addresses (0 when one is
        missing), held as `compile`'s are."""
        self.check_runnable()
        with self.lock:
            if all(s in self.addresses for s in symbols):
                return self._reuse(symbols)
            jit = self._new_jit(link_only=True)
            for obj in objects:
                jit.mcjit.add_object_file(llvm.ObjectFileRef.from_data(obj))
            jit.mcjit.finalize_object()
            return self._define(jit, symbols)

    def hold(self, owner, symbol: str):
        """The code defining symbol lives as long as owner (an Executable) does: the use that
        compile/load_objects counted for it is released when owner is garbage."""
        with self.lock:
            jit = self._jits.get(symbol)
        if jit is not None:
            weakref.finalize(owner, self._release, jit)

    def _release(self, jit: "_Jit"):
        """One use of jit's code ended; the last one frees it."""
        with self.lock:
            jit.uses -= 1
            if jit.uses > 0:
                return
            for s in jit.symbols:
                self.addresses.pop(s, None)
                self._jits.pop(s, None)
                self._codes.pop(s, None)
            jit.mcjit.close()
            jit.mcjit = None

    def live_jits(self) -> int:
        """How many MCJITs hold code now (each one compile or disk-cache load)."""
        with self.lock:
            return len({id(j) for j in self._jits.values()})

    def _new_jit(self, level: int = 3, link_only: bool = False, count: bool = True) -> "_Jit":
        """A new MCJIT. One that only links object code gets a machine at level 0: an MCJIT
        compiles its (empty) first module when finalised, ~1 ms at level 2 or 3, ~0.35 at 0.
        count=False: not counted as a disk-cache link (a split compile's objects)."""
        if link_only:
            links[0] += count
            machine = self.target.create_target_machine(cpu=self.cpu, features=self.features,
                                                        opt=0)
        else:
            machines[codegen_level(level)] += 1
            machine = self._machine(level)
        mcjit = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
        if self.object_cache is not None:
            mcjit.set_object_cache(*self.object_cache)
        return _Jit(mcjit)

    def _define(self, jit: "_Jit", symbols: list) -> list:
        addresses = [jit.mcjit.get_function_address(s) for s in symbols]
        if not all(addresses):
            jit.mcjit.close()
            return addresses
        jit.symbols, jit.uses = list(symbols), 1
        for s, a in zip(symbols, addresses):
            old = self._jits.get(s)
            if old is not None:              # a stale definition: the new one serves from now
                old.symbols.remove(s)
            self.addresses[s] = a
            self._jits[s] = jit
        return addresses

    def _reuse(self, symbols: list) -> list:
        self._jits[symbols[0]].uses += 1
        return [self.addresses[s] for s in symbols]


def _log_split(name: str, how: str):
    """GRADJIT_LOG: how a compile used the idle core (runtime/llvm_split.py)."""
    config.event("split", f"  @{name}: LLVM {how}", function=name, how=how)


class _Jit:
    """One MCJIT (with its own target machine, which it owns) and the symbols it defines."""
    __slots__ = ("mcjit", "symbols", "uses")

    def __init__(self, mcjit):
        self.mcjit = mcjit
        self.symbols: list = []
        self.uses = 0


def _load_libm():
    """Makes libm's symbols (tanhf, log1p, ...) visible to the JIT's symbol resolution.

    The Python process has libm loaded already; loading it by name again is harmless and
    keeps kernels working in an embedding process that does not.
    """
    # the usual soname first: ctypes.util.find_library runs `ldconfig -p` (a subprocess,
    # ~10 ms of every fresh process's first compile)
    for name in ("libm.so.6", None):
        name = name or ctypes.util.find_library("m")
        if not name:
            continue
        try:
            llvm.load_library_permanently(name)
            return
        except RuntimeError:
            pass


def target_from_env() -> tuple[str | None, str | None]:
    """(GRADJIT_TARGET_CPU, GRADJIT_TARGET_FEATURES), None for unset ("host" = unset)."""
    cpu = config.value("GRADJIT_TARGET_CPU").strip()
    features = config.value("GRADJIT_TARGET_FEATURES").strip()
    return (None if cpu in ("", "host") else cpu), (features or None)


def create_execution_engine() -> Engine:
    """The process-wide Engine of the target GRADJIT_TARGET_CPU/FEATURES ask for (the host
    by default), created on first use (llvmlite's documented JIT recipe)."""
    target = target_from_env()
    engine = _ENGINES.get(target)
    if engine is not None:
        return engine
    with LLVM_LOCK:
        if target not in _ENGINES:
            _ENGINES[target] = Engine(*target)
        return _ENGINES[target]


def fresh_execution_engine() -> Engine:
    """Replaces the process-wide Engine (of the current target) by one that has compiled
    nothing yet.

    For measuring cold compiles: the Engine shares code by symbol, so compiling a kernel
    again in the same Engine costs nothing. Code from the old Engine stays valid as long as
    the Executables holding it live.
    """
    target = target_from_env()
    with LLVM_LOCK:
        _ENGINES[target] = Engine(*target)
        return _ENGINES[target]


# ---- targets -----------------------------------------------------------------------------
