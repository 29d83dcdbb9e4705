"""Machine code for one optimised program module on two threads (a cold compile's wall time).

A program's module is its entry, the glue body (`optnone`) and one `noinline` function per
kernel (`<entry>.body.sN`, with its tasks, scan bodies and small shared helpers). Machine
code is made function by function, so the optimised module can be cut between kernels:

- side A is the optimised module itself: the entry, the body and some kernels; side B is a
  copy read from its bitcode into another LLVM context: the other kernels, made external
  there. In each, the other side's functions become `available_externally` (LLVM's code
  generator skips those; calls to them become references to the symbol) and `optnone`
  (its IR passes skip them too); helpers reached from both sides are emitted on both;
- each side's object comes from the target machine settings MCJIT would use (its objects
  and `emit_object`'s are byte-identical), and both are JIT-linked into the program's one
  MCJIT, where A's calls find B's kernels.

Side A's machine code, glue included, is byte for byte the whole-module compile's (tests
compare the disassembly, label numbers normalised). Side B's copy loses the in-memory
use-list order (bitcode does not keep it; a text round trip renumbers values as well), and
the code generator walks uses in places: on the benchmark programs one function per program
had an integer instruction scheduled one slot apart, the same instructions otherwise. The
results are bitwise the same (tests), so the disk cache's key is unchanged. The cut is
planned on the module text codegen produced (its call graph, sizes as line counts) and
refused (None: one module as before) when a function appears after optimisation that the
plan does not know (LLVM's function specialisation, say), when there are fewer than two
movable kernels, or a side would be too small to pay for the copy.

llvmlite holds one global lock around every call into LLVM; the two heavy calls per side
(reading bitcode, emitting the object) go around it through the ctypes function it wraps,
which releases the GIL: LLVM is thread-safe for work in separate contexts with separate
target machines. Everything else stays under the lock. runtime.engine.LLVM_LOCK is held by
the calling thread for the whole compile, so a fork (runtime.threads) waits for both sides.

The same compile also starts a helper thread (`start_helper`) that builds the call
trampolines and the thread pool the program's first call will need, while the calling
thread is inside the pipeline (a ctypes call: no GIL, no llvmlite lock held).

When the cut is `separable`, each side's pass pipeline runs on its thread too
(`optimise_split`): the other side's functions stay in its module as `optnone` bodies, so
the interprocedural passes see every call site, and the kernels crossing the cut are made
external on both sides first (tests/runtime/test_pipeline_split.py compares the optimised
IR and the results with the whole pipeline's).

Both run only when `idle_core()` says another core is free: on a busy machine, or with
GRADJIT_NUM_THREADS=1, a second thread would only take the core from someone else.
"""
from __future__ import annotations

import ctypes
import re
import threading

import llvmlite.binding as llvm
from llvmlite.binding import ffi

from runtime import code_switches, executable, pool, threads, trampoline

PIPELINE_SPLIT = True    # False: the pipeline on the whole module, machine code split (tests)
MIN_SIDE_LINES = 200     # a side costs ~8 ms more than its share (mlp: 39 ms whole, 27 + 29 split)
# NOTE: side A's thread also parses the module, plans the cut, writes B's bitcode and links
# both objects, so B takes kernels until A's lines plus this share of the module's outweigh
# its own. At 0 (lines alone) the calling thread did more than B (CPU ms, medians of 6 in
# one process): gmm 158 vs 128, lstm 136 vs 116, mlp 53 vs 34; at 0.1: 142 vs 136, 119 vs
# 107, 51 vs 41, CPU the same for gmm and lstm (0.06 and 0.14 tried: no better). Not for a
# module under SHARE_LINES: mlp's (620 lines) side A did not get faster, B did ~6 ms more
CALLER_SHARE = 0.1
SHARE_LINES = 1000
ENABLED = True           # False: one module on one thread (tests, A/B comparisons)
counts = {"split": 0, "whole": 0, "helper": 0, "helper_errors": 0, "pipeline_split": 0,
          "pipeline_refused": 0}   # tests read them

_DEFINE = re.compile(r'^define [^@]*@"?([^"(]+)"?\(.*$', re.M)
_REFERENCE = re.compile(r'@"([^"]+)"|@([-\w.$]+)')
_GLOBAL = re.compile(r'^@"?([^"\s=]+)"?\s*=', re.M)


class Plan:
    """Which functions each side emits, and which side-B kernels side A calls by symbol."""

    def __init__(self, emit_a: set, emit_b: set, exported: set, defined: set,
                 glue: frozenset = frozenset()):
        self.emit_a, self.emit_b, self.exported, self.defined = emit_a, emit_b, exported, defined
        self.glue = glue


def call_graph(text: str) -> tuple[dict, dict]:
    """({function: functions its body names}, {function: lines}) of module text's definitions."""
    refs: dict = {}
    lines: dict = {}
    current = None
    for line in text.splitlines():
        if current is None:
            m = _DEFINE.match(line)
            if m:
                current = m.group(1)
                refs[current], lines[current] = set(), 0
        elif line == "}":
            current = None
        else:
            lines[current] += 1
            if "@" in line:
                refs[current].update(a or b for a, b in _REFERENCE.findall(line))
    return {f: r & refs.keys() for f, r in refs.items()}, lines


def _closure(roots, refs: dict, stop: set) -> set:
    seen, todo = set(), list(roots)
    while todo:
        f = todo.pop()
        if f in seen or f in stop:
            continue
        seen.add(f)
        todo.extend(refs.get(f, ()))
    return seen


def plan(text: str, entry: str, why: list | None = None) -> Plan | None:
    """How to cut the module `text` (codegen's, before optimisation) between its kernels,
    or None when it does not pay (fewer than two movable kernels, a side too small); then
    the reason is appended to `why` when given (GRADJIT_LOG)."""
    refs, lines = call_graph(text)
    glue = {entry, f"{entry}.body"} & refs.keys()
    why = [] if why is None else why
    if entry not in glue:
        why.append("no entry function to cut from")
        return None
    roots = set().union(*(refs[g] for g in glue)) - glue
    # a kernel another kernel reaches stays with A (it is emitted where it is reached)
    movable = [r for r in roots if not any(r in _closure(refs[o], refs, glue)
                                           for o in roots if o != r)]
    if len(movable) < 2:
        why.append("fewer than two kernels to move")
        return None
    reach = {r: _closure([r], refs, glue) for r in movable}
    pinned = _closure([c for g in glue for c in refs[g] if c not in movable], refs, glue)
    # NOTE: the glue is optnone (fast instruction selection): its lines are not counted
    weight_a = sum(lines[f] for f in pinned)
    total = sum(lines.values())
    caller = CALLER_SHARE * total if total >= SHARE_LINES else 0
    side_b: list = []
    weight_b = 0
    on_a, on_b = set(pinned), set()
    for r in sorted(movable, key=lambda r: (-sum(lines[f] for f in reach[r]), r)):
        # NOTE: a kernel costs a side only what it does not emit already: a helper both
        # sides call is compiled twice (mlp, lines alone: ~6 ms more CPU for ~2 ms less wall)
        add_a = sum(lines[f] for f in reach[r] - on_a)
        add_b = sum(lines[f] for f in reach[r] - on_b)
        if weight_b + add_b < weight_a + caller + add_a:
            side_b.append(r)
            weight_b += add_b
            on_b |= reach[r]
        else:
            weight_a += add_a
            on_a |= reach[r]
    if not side_b or min(weight_a, weight_b) < MIN_SIDE_LINES:
        why.append(f"a side would be under {MIN_SIDE_LINES} lines ({weight_a} + {weight_b})")
        return None
    emit_b = _closure(side_b, refs, glue)
    emit_a = glue | pinned | _closure([r for r in movable if r not in side_b], refs, glue)
    if any(refs[f] - emit_b for f in emit_b) or any(refs[f] - emit_a - set(side_b)
                                                     for f in emit_a):
        why.append("a reference the cut would leave unresolved")
        return None
    return Plan(emit_a, emit_b, set(side_b), set(refs), frozenset(glue))


def separable(p: Plan, text: str, why: list | None = None) -> bool:
    """Whether each side can also be optimised on its own thread (`optimise_split`): every
    helper both sides call is `noinline` (the inliner's choices elsewhere cannot depend on
    how many calls to it are left) and no global is named from both sides. Each side's
    module keeps every function, the other side's as `optnone` bodies the pipeline skips,
    so a function sees the same callers, callees and call sites as in the whole module.
    When not, the reason is appended to `why` when given (GRADJIT_LOG)."""
    why = [] if why is None else why
    if not PIPELINE_SPLIT:
        why.append("llvm_split.PIPELINE_SPLIT is off")
        return False
    kept = {m.group(1) for m in _DEFINE.finditer(text) if " noinline" in m.group(0)}
    inlinable = (p.emit_a & p.emit_b) - kept - p.glue
    if inlinable:
        why.append(f"both sides call the inlinable {sorted(inlinable)[0]}")
        return False
    globals_ = {m.group(1) for m in _GLOBAL.finditer(text)}
    if not globals_:
        return True
    named = {f: set() for f in p.defined}
    current = None
    for line in text.splitlines():
        m = _DEFINE.match(line)
        if m:
            current = m.group(1)
        elif line == "}":
            current = None
        elif current is not None and "@" in line:
            named[current].update(a or b for a, b in _REFERENCE.findall(line))
    used_a = set().union(*(named[f] for f in p.emit_a)) & globals_
    used_b = set().union(*(named[f] for f in p.emit_b)) & globals_
    if used_a & used_b:
        why.append(f"both sides name the global {sorted(used_a & used_b)[0]}")
        return False
    return True


def usable_after_optimisation(p: Plan, mod) -> bool:
    """Whether every function the optimised module defines was in the plan (the optimiser
    may delete functions, e.g. inlined helpers, but a new one is not known to either side)."""
    return all(f.name in p.defined for f in mod.functions if not f.is_declaration)


def idle_core() -> bool:
    """Whether another core looks idle now: more than one core for this process, a thread
    count above 1 (GRADJIT_NUM_THREADS=1 means one core), and fewer runnable tasks than
    cores in /proc/loadavg (this thread is one of them); without /proc, the cores alone."""
    cores = pool.cores()
    if cores < 2 or threads.num_threads() < 2:
        return False
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return True
    return running < cores


def _raw(name: str):
    """The ctypes function llvmlite's wrapper `ffi.lib.<name>` calls under its global lock."""
    return getattr(ffi.lib, name)._cfn


def _read_bitcode(bitcode: bytes):
    """A module of its own context from bitcode (the read itself outside llvmlite's lock)."""
    context = llvm.create_context()
    with ffi.OutputString() as err:
        ptr = _raw("LLVMPY_ParseBitcode")(context, ctypes.c_char_p(bitcode), len(bitcode), err)
        if err:
            raise RuntimeError(f"reading the optimised module's bitcode: {err}")
    return llvm.ModuleRef(ptr, context)


def _side(mod, p: Plan, side: str, machine) -> tuple:
    """(object code, module) of one side: mod's functions of the other side are left out."""
    emit = p.emit_a if side == "a" else p.emit_b
    for f in mod.functions:
        if f.is_declaration:
            continue
        if f.name not in emit:
            # NOTE: optnone keeps the code generator's IR passes (strength reduction, ...) off
            # a body it will not emit: ~16 ms of each side of gmm's
            f.linkage = llvm.Linkage.available_externally
            f.add_function_attribute("noinline")
            f.add_function_attribute("optnone")
        elif side == "b" and f.name in p.exported:
            f.linkage = llvm.Linkage.external
    with ffi.OutputString() as err:
        buf = _raw("LLVMPY_TargetMachineEmitToMemory")(machine, mod, 1, err)
        if not buf:
            raise RuntimeError(f"machine code: {err}")
    try:
        data = ctypes.string_at(ffi.lib.LLVMPY_GetBufferStart(buf),
                                ffi.lib.LLVMPY_GetBufferSize(buf))
    finally:
        ffi.lib.LLVMPY_DisposeMemoryBuffer(buf)
    return data, mod


def _skip_other_side(mod, p: Plan, side: str):
    """Before the pipeline: the other side's kernels (and what only they reach) become bodies
    it skips (`optnone`; `_side` leaves them out of the object afterwards). NOTE: kept as
    definitions, not made `available_externally` (dropped mid-pipeline): the interprocedural
    passes (constant ranges of a helper's arguments, say) then see every call site."""
    own, other = (p.emit_a, p.emit_b) if side == "a" else (p.emit_b, p.emit_a)
    for f in mod.functions:
        if not f.is_declaration and f.name in other and f.name not in own | p.glue:
            f.add_function_attribute("noinline")
            f.add_function_attribute("optnone")
        if f.name in p.exported:
            # NOTE: external on both sides before the pipeline, so that neither changes its
            # calling convention or drops an unused argument (the whole module's pipeline
            # makes an internal kernel fastcc and rewrites the call; here the call and the
            # definition are optimised in different modules)
            f.linkage = llvm.Linkage.external


def optimise_split(mod, p: Plan, machines, optimise) -> list | None:
    """[(object, module)] for sides A and B, each optimised (`optimise(side module, 0 or 1)`,
    outside llvmlite's lock, a target machine per side) and emitted on a thread of its own:
    A from mod itself on this thread, B from a bitcode copy. None when a side's pipeline made
    a function the plan does not know (mod is then unusable: the caller parses it again)."""
    def make(side_mod, side, machine):
        _skip_other_side(side_mod, p, side)
        optimise(side_mod, "ab".index(side))
        if not usable_after_optimisation(p, side_mod):
            return None
        return _side(side_mod, p, side, machine)
    return _two_sides(mod, lambda m: make(m, "a", machines[0]),
                      lambda m: make(m, "b", machines[1]))


def emit_split(mod, p: Plan, machines) -> list:
    """[(object, module)] for sides A and B of the optimised module mod: A from mod itself
    (changed in place) on this thread, B from a bitcode copy on a new one. An error on
    either side is raised here (B's after A is done)."""
    return _two_sides(mod, lambda m: _side(m, p, "a", machines[0]),
                      lambda m: _side(m, p, "b", machines[1]))


def _two_sides(mod, side_a, side_b) -> list | None:
    """[side_a(mod), side_b(bitcode copy of mod)], B on a new thread; an error on either side
    is raised here (B's after A is done); None when either side gave None."""
    bitcode = mod.as_bitcode()
    failure: list = []
    result: list = []
    copies: list = []

    def run_b():
        try:
            copies.append(_read_bitcode(bitcode))
            result.append(side_b(copies[0]))
        except BaseException as e:      # re-raised on the calling thread below
            failure.append(e)

    worker = threading.Thread(target=run_b, name="gradjit-llvm", daemon=True)
    worker.start()
    try:
        a = side_a(mod)
    except BaseException:
        failure.insert(0, None)
        raise
    finally:
        join(worker)
        if failure:
            # NOTE: the modules now, before their contexts: the error's traceback holds both,
            # and a garbage collection of that cycle may dispose a context first (a crash)
            for m in copies + [mod]:
                m.close()
    if failure:
        raise failure[0]
    if a is None or result[0] is None:
        return None
    return [a, result[0]]


def join(thread: threading.Thread):
    """Waits for thread to end even if a KeyboardInterrupt arrives meanwhile (raised after):
    LLVM_LOCK must not be released while the thread is still in LLVM."""
    interrupted = None
    while True:
        try:
            thread.join()
            break
        except KeyboardInterrupt as e:
            interrupted = e
    if interrupted is not None:
        raise interrupted


def run_passes_unlocked(pm, mod, pb):
    """pm.run(mod, pb) outside llvmlite's lock (mod's context is the caller's alone)."""
    _raw("LLVMPY_RunNewModulePassManager")(pm, mod, pb)


def helper_jobs(text: str) -> list:
    """The runtime code a new program's first call will build, to build it meanwhile: the
    call trampolines (every program), the thread pool (a kernel with gj.parallel_for, when
    kernels run on more than one thread). Each job skips work already done or under way."""
    tasks = "gj.parallel_for" in text
    jobs = [lambda: trampoline.prefetch(executable.TUPLE_ITEMS, with_pool=tasks)]
    if tasks and threads.num_threads() > 1:
        jobs.append(pool.prefetch)      # (built already, with the trampolines, as a rule)
    return jobs


def start_helper(text: str):
    """A started thread running helper_jobs(text), or None when there is nothing to do. A
    job's error is dropped here: the first call builds the code again on its own thread,
    where the error is raised or logged as without the helper."""
    if trampoline.ready() and ("gj.parallel_for" not in text or pool.ready()):
        return None
    jobs = helper_jobs(text)

    def run():
        for job in jobs:
            try:
                job()
            except Exception:        # rebuilt (and reported) by the caller's first call
                counts["helper_errors"] += 1
    helper = threading.Thread(target=run, name="gradjit-llvm-helper", daemon=True)
    helper.start()
    counts["helper"] += 1
    return helper


code_switches.snapshot(__name__)      # (last: the values as imported)
