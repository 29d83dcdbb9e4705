"""The LLVM target an engine compiles for: the CPU names and features LLVM knows, the check
of GRADJIT_TARGET_CPU/FEATURES against them, whether this host can run code for a target,
and the vector width a feature string gives (runtime/engine.py re-exports these)."""
from __future__ import annotations

import os
import tempfile
import threading

import llvmlite.binding as llvm

LLVM_LOCK = threading.RLock()


class TargetError(RuntimeError):
    """GRADJIT_TARGET_CPU/FEATURES name an unknown CPU or feature, or code for a CPU this host
    may not support was about to run."""


_KNOWN: dict = {}


def known_targets() -> tuple[frozenset, frozenset]:
    """(CPU names, feature names) LLVM knows for this triple: read once from the list LLVM
    prints for the CPU name "help" (to stderr, so fd 2 is redirected around that call)."""
    if not _KNOWN:
        with LLVM_LOCK, tempfile.TemporaryFile() as out:
            saved = os.dup(2)
            try:
                os.dup2(out.fileno(), 2)
                llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
                    cpu="help")
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            out.seek(0)
            text = out.read().decode(errors="replace")
        sections = {"cpus": set(), "features": set()}
        current = None
        for line in text.splitlines():
            if line.startswith("Available CPUs"):
                current = "cpus"
            elif line.startswith("Available features"):
                current = "features"
            elif current and line.startswith("  ") and " - " in line:
                sections[current].add(line.split()[0])
        _KNOWN["cpus"] = frozenset(sections["cpus"])
        _KNOWN["features"] = frozenset(sections["features"])
    return _KNOWN["cpus"], _KNOWN["features"]


def _resolve_target(cpu, features, host_cpu: str, host_features: str) -> tuple[str, str]:
    """The (cpu, features) strings for LLVM, checked: LLVM warns and guesses on an unknown
    CPU name or feature (and may abort the process later), so those are errors here."""
    if cpu is None:
        chosen = host_features if features is None else f"{host_features},{features}"
        cpu = host_cpu
    else:
        chosen = features or ""
    if cpu != host_cpu or features is not None:
        cpus, known = known_targets()
        if cpu not in cpus:
            raise TargetError(f"GRADJIT_TARGET_CPU={cpu!r} is not a CPU LLVM knows for "
                              f"{llvm.get_process_triple()} (e.g. haswell, znver3, "
                              "skylake-avx512, x86-64-v2; 'host' for this one)")
        for flag in filter(None, (f.strip() for f in (features or "").split(","))):
            if flag[:1] not in ("+", "-") or flag[1:] not in known:
                raise TargetError(f"GRADJIT_TARGET_FEATURES: {flag!r} is not '+' or '-' "
                                  "followed by a feature LLVM knows (e.g. +avx2,-fma)")
    return cpu, chosen


_PROBE = """
target triple = "{triple}"
@g = global i32 0
define internal void @target() #0 {{
  store volatile i32 1, ptr @g
  ret void
}}
define void @host() #1 {{
  call void @target()
  ret void
}}
attributes #0 = {{ "target-cpu"="{cpu}" "target-features"="{features}" }}
attributes #1 = {{ "target-cpu"="{cpu}" "target-features"="{masked}" }}
"""


def _runnable_problem(engine, asked: str | None) -> str | None:
    """None when the host can run code for the engine's target, else why not.

    LLVM is asked, not a table: X86's inliner inlines a function into another only when the
    callee's features are a subset of the caller's. The callee is the target; the caller
    is the same target with every feature the host lacks turned off. If it inlines, the
    target enables nothing the host lacks.
    """
    if engine.cpu == engine.host_cpu and engine.features == engine.host_features:
        return None
    lacking = [f[1:] for f in engine.host_features.split(",") if f.startswith("-")]
    masked = ",".join([f for f in engine.features.split(",") if f] + ["-" + f for f in lacking])
    mod = llvm.parse_assembly(_PROBE.format(triple=engine.triple, cpu=engine.cpu,
                                            features=engine.features, masked=masked))
    engine.optimize(mod)
    if "call " not in str(mod.get_function("host")):
        return None
    return (f"code compiled for GRADJIT_TARGET_CPU={engine.cpu!r}"
            f"{' with GRADJIT_TARGET_FEATURES=' + asked if asked else ''} may use "
            f"instructions this host ({engine.host_cpu}) lacks, so it is not run (it would "
            "die with SIGILL). Lowering works: runtime.lower(fn).optimized_llvm_ir and "
            ".assembly; unset GRADJIT_TARGET_CPU to compile for this host.")


def enabled_features(features: str) -> set[str]:
    """The features an LLVM feature string turns on ("+avx2,-avx512f,..."): the last +/- of
    a name wins, as in LLVM."""
    on: set[str] = set()
    for flag in (f.strip() for f in features.split(",")):
        if flag[:1] == "+":
            on.add(flag[1:])
        elif flag[:1] == "-":
            on.discard(flag[1:])
    return on


def vector_bytes(features: str) -> int:
    """64 when the target's LLVM features end with AVX-512 on (a named GRADJIT_TARGET_CPU
    without features: 32), else 32."""
    return 64 if "avx512f" in enabled_features(features) else 32
