"""Where compile time goes: named phases (trace, optimise, codegen, llvm, load), timed only
when someone is looking (GRADJIT_LOG or an open gj.profile session).

    with phases.collect() as times:       # the compile cache, around one compile
        with phases.phase("codegen"):
            ...
    times -> {"codegen": 0.012, "llvm": 0.031}

A phase outside any `collect` (the tracer's trace, say) is still logged on its own and
shown as a span in an open profile's Chrome trace.
"""
from __future__ import annotations

import contextlib
import threading
import time

from runtime import config

_local = threading.local()
_spans = []              # callbacks (name, start, seconds) of open profile sessions


def watching() -> bool:
    return config.logging_enabled() or bool(_spans)


@contextlib.contextmanager
def phase(name: str):
    """Times the block as phase `name` (nothing happens when nobody is watching). A phase
    inside another (the shared helpers built during codegen) is taken out of the outer
    one's time, so the phases of a compile add up to at most its time."""
    if not watching():
        yield
        return
    start = time.perf_counter()
    outer = getattr(_local, "inner", None)
    _local.inner = [0.0]
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        own = seconds - _local.inner[0]
        _local.inner = outer
        if outer is not None:
            outer[0] += seconds
        record = getattr(_local, "times", None)
        if record is not None:
            record[name] = record.get(name, 0.0) + own
        for span in list(_spans):
            span(name, start, seconds)


@contextlib.contextmanager
def collect():
    """Gathers the phases run inside the block (on this thread) into the dict it yields."""
    outer = getattr(_local, "times", None)
    times: dict[str, float] = {}
    _local.times = times
    try:
        yield times
    finally:
        _local.times = outer
        if outer is not None:
            for name, seconds in times.items():
                outer[name] = outer.get(name, 0.0) + seconds


def breakdown(times: dict[str, float]) -> str:
    """'optimise 1.2 ms, codegen 3.4 ms, llvm 20.1 ms' in the order the phases ran."""
    return ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in times.items())
