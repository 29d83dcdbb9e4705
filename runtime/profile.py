"""A profiler of compiled code: per program and per kernel, as a table or a Chrome trace.

    with gj.profile() as prof:
        for _ in range(100):
            step()
    print(prof.table())                     # sorted by total time
    prof.export_chrome_trace("trace.json")  # chrome://tracing, ui.perfetto.dev

While a session is open, every call of a compiled program is timed (wall clock around the
native call) and, with `kernels=True` (the default), runs an instrumented copy of the
program: the code generator wraps each top-level kernel (a loop nest, a BLAS call, a
control-flow op) in two reads of the CPU's cycle counter and adds the difference to a
counter in the workspace (codegen/emit.py, `profile=True`). The copy is compiled on the
program's first call in the session (shown as a compile span) and kept for later sessions.
Cycles become seconds by the counter's rate, measured against the wall clock over the
session (x86's invariant TSC ticks at a constant rate).

Off, nothing is paid: the profiler swaps `Executable.run` for its own while a session is
open and puts the original back when it closes; no timing instruction is compiled into
ordinary programs.
"""
from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

import runtime
from runtime import phases, threads
from runtime.engine import create_execution_engine
from runtime.executable import Executable, _workspace

_active: list["Profile"] = []
_lock = threading.Lock()
_original_run = Executable.run
_instrumented: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_clock_fn = None


def _cycle_counter():
    """A native function returning the CPU's cycle counter (compiled once)."""
    global _clock_fn
    if _clock_fn is None:
        import ctypes

        from llvmlite import ir as ll

        module = ll.Module(name="gj_clock")
        i64 = ll.IntType(64)
        fn = ll.Function(module, ll.FunctionType(i64, []), "gj_cycles")
        clock = module.declare_intrinsic("llvm.readcyclecounter", (), ll.FunctionType(i64, []))
        bld = ll.IRBuilder(fn.append_basic_block())
        bld.ret(bld.call(clock, []))
        engine = create_execution_engine()
        address = engine.compile([str(module)], ["gj_cycles"], "gj_cycles")[0]
        _clock_fn = (engine, ctypes.CFUNCTYPE(ctypes.c_uint64)(address))
    return _clock_fn[1]


@dataclass
class Stat:
    """Totals of one program or one kernel."""
    name: str
    program: str
    calls: int = 0
    seconds: float = 0.0
    cycles: int = 0              # kernels: cycle-counter ticks (converted at the end)
    bytes: int = 0               # bytes read + written by all calls
    flops: int = 0               # floating-point operations of dot products (2 per MAC)

    @property
    def mean(self) -> float:
        return self.seconds / self.calls if self.calls else 0.0


@dataclass
class _Kernels:
    """The instrumented copy of one Executable and what its kernels are."""
    exe: Executable
    offset: int
    labels: list[str]
    bytes: list[int]
    flops: list[int]
    workspaces: dict = field(default_factory=dict)     # thread id -> workspace
    epoch: int = -1          # runtime.threads.epoch the workspaces' headers were written at


class Profile:
    """One profiling session: `with gj.profile() as prof:` (see the module docstring).

    Args:
        kernels: time each kernel of each program (runs instrumented copies); False times
            whole programs only (no compile, lowest overhead).
    """

    def __init__(self, kernels: bool = True):
        self.kernels = kernels
        self.programs: dict[int, Stat] = {}
        self.kernel_stats: dict[tuple, Stat] = {}
        self.events: list[dict] = []          # Chrome trace events ("X" spans, microseconds)
        self._t0 = 0.0
        self._c0 = 0
        self.wall = 0.0
        self.cycles_per_second = 0.0

    # ---- session ------------------------------------------------------------------------

    def __enter__(self) -> "Profile":
        with _lock:
            if not _active:
                Executable.run = _profiled_run
            _active.append(self)
            phases._spans.append(self._phase_span)
        if self.kernels:
            self._c0 = _cycle_counter()()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._t0
        if self.kernels:
            ticks = _cycle_counter()() - self._c0
            self.cycles_per_second = ticks / self.wall if self.wall > 0 else 0.0
            for stat in self.kernel_stats.values():
                stat.seconds = stat.cycles / self.cycles_per_second if self.cycles_per_second else 0
            self._kernel_events_to_seconds()
        with _lock:
            _active.remove(self)
            phases._spans.remove(self._phase_span)
            if not _active:
                Executable.run = _original_run
        return False

    def _now_us(self) -> float:
        return (time.perf_counter() - self._t0) * 1e6

    # ---- recording (called from _profiled_run) ------------------------------------------

    def _record(self, exe: Executable, start_us: float, seconds: float, nbytes: int,
                kernels: "_Kernels | None", cycles: np.ndarray | None):
        key = id(exe)
        stat = self.programs.get(key)
        if stat is None:
            stat = self.programs[key] = Stat(f"@{exe.fn.name}", f"@{exe.fn.name}")
        stat.calls += 1
        stat.seconds += seconds
        stat.bytes += nbytes
        tid = threading.get_ident()
        self.events.append({"name": stat.name, "ph": "X", "ts": start_us, "dur": seconds * 1e6,
                            "pid": 1, "tid": tid, "cat": "program"})
        if kernels is None or cycles is None:
            return
        at = start_us
        for k, label in enumerate(kernels.labels):
            ks = self.kernel_stats.get((key, k))
            if ks is None:
                ks = self.kernel_stats[(key, k)] = Stat(label, stat.name)
            n = int(cycles[k, 1])
            ks.calls += n
            ks.cycles += int(cycles[k, 0])
            ks.bytes += kernels.bytes[k] * n
            ks.flops += kernels.flops[k] * n
            # kernel spans nest inside the program span; their length is known in cycles
            self.events.append({"name": label, "ph": "X", "ts": at, "cycles": int(cycles[k, 0]),
                                "pid": 1, "tid": tid, "cat": "kernel"})

    def _kernel_events_to_seconds(self):
        rate = self.cycles_per_second
        last_end: dict = {}
        for ev in self.events:
            if ev["cat"] == "program":
                last_end[ev["tid"]] = ev["ts"]
            elif "cycles" in ev:
                ev["ts"] = max(ev["ts"], last_end.get(ev["tid"], ev["ts"]))
                ev["dur"] = ev.pop("cycles") / rate * 1e6 if rate else 0.0
                last_end[ev["tid"]] = ev["ts"] + ev["dur"]

    def _phase_span(self, name: str, start: float, seconds: float):
        """A compile phase (runtime/phases.py) that ran during the session, as a span."""
        self.compile_span(name, (start - self._t0) * 1e6, seconds)

    def compile_span(self, name: str, start_us: float, seconds: float):
        self.events.append({"name": name, "ph": "X", "ts": start_us, "dur": seconds * 1e6,
                            "pid": 1, "tid": threading.get_ident(), "cat": "compile"})

    # ---- output -------------------------------------------------------------------------

    def table(self, limit: int | None = None) -> str:
        """Programs and kernels sorted by total time: calls, total, mean, bytes, rates."""
        rows = sorted([*self.programs.values(), *self.kernel_stats.values()],
                      key=lambda s: -s.seconds)[:limit]
        head = (f"{'name':<52} {'calls':>7} {'total ms':>10} {'mean us':>10} "
                f"{'MB':>9} {'GB/s':>7} {'GFLOP/s':>8}")
        lines = [head, "-" * len(head)]
        for s in rows:
            name = s.name if s.name.startswith("@") else "  " + s.name
            gbs = s.bytes / s.seconds / 1e9 if s.seconds else 0.0
            gflops = f"{s.flops / s.seconds / 1e9:8.2f}" if s.flops and s.seconds else " " * 8
            lines.append(f"{name[:52]:<52} {s.calls:>7} {s.seconds * 1e3:>10.3f} "
                         f"{s.mean * 1e6:>10.2f} {s.bytes / 1e6:>9.2f} {gbs:>7.2f} {gflops}")
        lines.append(f"wall time of the session: {self.wall * 1e3:.3f} ms")
        return "\n".join(lines)

    def export_chrome_trace(self, path) -> None:
        """Writes the trace-event JSON that chrome://tracing and Perfetto open."""
        names = {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "gradjit"}}
        with open(path, "w") as f:
            json.dump({"traceEvents": [names, *self.events], "displayTimeUnit": "ms"}, f)

    def __repr__(self) -> str:
        return f"<gradjit.Profile {len(self.programs)} program(s), {self.wall * 1e3:.1f} ms>"


def profile(kernels: bool = True) -> Profile:
    """A profiling session, to use as a context manager (see the module docstring)."""
    return Profile(kernels)


def _kernels_of(exe: Executable, session: Profile) -> "_Kernels | None":
    """The instrumented copy of exe (compiled on first use, kept while exe lives)."""
    if exe.kernel is None or exe.backend != "native":
        return None
    found = _instrumented.get(exe)
    if found is not None:
        return found
    # NOTE: late: codegen's imports cost ~1 s, and `import gradjit` loads this module
    from codegen.emit import lower_function
    from codegen.report import fusion_report
    start_us, t = session._now_us(), time.perf_counter()
    externals = runtime.externals()
    source = lower_function(exe.fn, bounds_check=False, externals=externals, profile=True)
    copy = runtime.build_executable(exe.fn, source)
    report = fusion_report(exe.fn, externals)
    labels, nbytes, flops = [], [], []
    dots = {op.results[0]: op for op in exe.fn.body if op.prim.name == "dot_general"}
    for k in report.kernels:
        ops = ", ".join(op.prim.name for op in k.ops[:4]) + (" ..." if len(k.ops) > 4 else "")
        where = f" [{','.join(map(str, k.space))}]" if k.space is not None else ""
        labels.append(f"@{exe.fn.name} k{k.index} {k.kind}{where}: {ops}")
        nbytes.append(k.bytes_read + k.bytes_written)
        dot = dots.get(k.ops[0].results[0]) if k.ops else None
        flops.append(_dot_flops(dot) if dot is not None else 0)
    found = _Kernels(copy, source.profile_offset, labels, nbytes, flops)
    _instrumented[exe] = found
    session.compile_span(f"compile profiled @{exe.fn.name}", start_us, time.perf_counter() - t)
    return found


def _dot_flops(op) -> int:
    """2 x multiply-adds of a dot_general: result elements x contracted length."""
    x, (contract, _) = op.inputs[0], op.params["contract"]
    return 2 * op.results[0].type.size * int(np.prod([x.shape[a] for a in contract]))


def _profiled_run(exe: Executable, arrays) -> list:
    """Executable.run while a session is open: time the call (and its kernels)."""
    session = _active[-1] if _active else None
    if session is None:
        return _original_run(exe, arrays)
    kernels = _kernels_of(exe, session) if session.kernels else None
    out_bytes = exe.__dict__.get("_profile_out_bytes")
    if out_bytes is None:                # the outputs' size never changes: counted once
        out_bytes = exe._profile_out_bytes = sum(
            int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize for s, d in exe._outs)
    nbytes = sum([a.nbytes for a in arrays]) + out_bytes
    t = time.perf_counter()
    start_us = (t - session._t0) * 1e6
    if kernels is None:
        outs = _original_run(exe, arrays)
        session._record(exe, start_us, time.perf_counter() - t, nbytes, None, None)
        return outs
    copy = kernels.exe
    if kernels.epoch != threads.epoch:       # the thread count changed: new headers, as
        kernels.workspaces.clear()           # Executable.run does for its own workspaces
        kernels.epoch = threads.epoch
    ws = kernels.workspaces.get(threading.get_ident())
    if ws is None:
        ws = kernels.workspaces[threading.get_ident()] = _workspace(copy._ws_bytes, copy.uses_pool)
    outs = [np.empty(shape, dt) for shape, dt in copy._outs]
    copy._call((*arrays, *outs, ws))
    seconds = time.perf_counter() - t
    n = len(kernels.labels)
    counters = ws[kernels.offset:kernels.offset + 16 * n].view(np.int64).reshape(n, 2)
    cycles = counters.copy()
    counters[:] = 0
    session._record(exe, start_us, seconds, nbytes, kernels, cycles)
    return outs
