"""Timing machinery shared by the workloads: interleaved medians, gradient cross-checks.

A workload is a `Workload` with one callable per system, all computing the same value and
gradients from the same inputs. Systems are timed round-robin (one call of each per round)
so that machine noise hits all of them alike; we report medians and ratios, never a lone
absolute time as a claim.
"""
from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class System:
    name: str
    run: Callable[[], object]                 # one full value-and-gradient evaluation
    to_numpy: Callable[[object], list]        # its result as a flat list of arrays
    cold: Callable[[], float] | None = None   # seconds for trace + compile + first run


@dataclass
class Workload:
    name: str
    description: str
    systems: list[System]
    rtol: float = 1e-4
    extra: dict = field(default_factory=dict)   # ideal times, GFLOP counts, ...


def optional_import(name: str):
    try:
        return __import__(name)
    except Exception:
        return None


def check_agreement(w: Workload) -> dict[str, float]:
    """Runs every system once; returns each one's max relative error against the first."""
    results = {s.name: [np.asarray(a, np.float64) for a in s.to_numpy(s.run())] for s in w.systems}
    ref_name = w.systems[0].name
    ref = results[ref_name]
    errors = {}
    for name, got in results.items():
        if len(got) != len(ref):
            raise AssertionError(f"{w.name}: {name} returned {len(got)} arrays, "
                                 f"{ref_name} {len(ref)}")
        err = 0.0
        for a, b in zip(got, ref):
            scale = max(np.max(np.abs(b)), 1e-30)
            err = max(err, float(np.max(np.abs(a - b)) / scale))
        if err > w.rtol:
            raise AssertionError(f"{w.name}: {name} disagrees with {ref_name}: rel err {err:.2e}")
        errors[name] = err
    return errors


def interleaved_medians(systems: list[System], rounds: int, min_seconds: float) -> dict:
    """Median seconds per call for each system, timed round-robin."""
    times = {s.name: [] for s in systems}
    start = time.perf_counter()
    r = 0
    while r < rounds or (time.perf_counter() - start < min_seconds and r < 50 * rounds):
        for s in systems:
            t0 = time.perf_counter()
            s.run()
            times[s.name].append(time.perf_counter() - t0)
        r += 1
    return {name: statistics.median(ts) for name, ts in times.items()}


def calls_per_round(run: Callable, target_seconds: float = 0.02) -> int:
    """How many calls to batch so one timed sample lasts ~target (for microsecond calls)."""
    t0 = time.perf_counter()
    run()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(target_seconds / once))


def peak_memory(run: Callable) -> int:
    """Peak bytes allocated through Python/NumPy during one call (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
