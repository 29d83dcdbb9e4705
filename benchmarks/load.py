"""A busy machine on demand, several benchmark processes at once, and what the CPU is.

    python -m benchmarks --load 2 ...       the run with 2 busy-loop processes alongside
    python -m benchmarks --procs 2 ...      2 copies of the run at once, each reporting
    python -m benchmarks --cpu-report       CPU model, LLVM target and ISA, vector width, BLAS
    python -m benchmarks --pool-table       issue 13's table: the MLP's value_and_grad alone
                                            (1 thread, default), two at once, every core busy
    python -m benchmarks.load mlp-loop [seconds]     one MLP timing (what the table runs)
    python -m benchmarks.load mlp-ab seconds         1 thread vs default, alternating

Busy loops and copies are child processes of this one, stopped (by their own pid) when the
run ends, also on Ctrl-C.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import re
import statistics
import subprocess
import sys
import time

BUSY = "while True: pass"


@contextlib.contextmanager
def busy_loops(n: int):
    """n processes spinning on a core each for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(max(0, n))]
    try:
        time.sleep(0.2 if procs else 0)       # let them start before anything is timed
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def run_copies(argv: list, n: int, env: dict | None = None) -> list[str]:
    """Runs `python -m benchmarks argv` n times at once; returns each one's output."""
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks", *argv], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(n)]
    try:
        return [p.communicate()[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def strip_option(argv: list, name: str) -> list:
    """argv without `name N` / `name=N`."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == name:
            skip = True
            continue
        if a.startswith(name + "="):
            continue
        out.append(a)
    return out


# ---- what the CPU is ---------------------------------------------------------------------

def cpu_report() -> list[str]:
    """Lines naming the CPU, the ISA LLVM compiles for, the vector width and the BLAS."""
    from runtime import blas, pool, threads
    from runtime.engine import create_execution_engine, enabled_features
    engine = create_execution_engine()
    features = enabled_features(engine.features)
    isa = [f for f in ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                       "avx512dq", "avx512vnni", "avx512bf16", "amx-tile", "neon", "sve")
           if f in features]
    bits = 512 if "avx512f" in features else 256 if "avx" in features else 128
    width = f"vector width {bits} bits"
    if not features and engine.cpu != engine.host_cpu:
        # a named CPU without feature flags: LLVM applies that CPU's own feature set
        isa, width = [f"the features LLVM's {engine.cpu} implies"], "its vector width"
    found = blas.binding()
    config = ""
    if found is not None and found.lib is not None:
        get_config = blas._openblas_function(found.lib, "get_config")
        if get_config is not None:
            get_config.restype = ctypes.c_char_p
            config = (get_config() or b"").decode(errors="replace")
        corename = blas._openblas_function(found.lib, "get_corename")
        if corename is not None:
            corename.restype = ctypes.c_char_p
            config += f"; kernels for {(corename() or b'?').decode(errors='replace')}"
    lines = [f"cpu: {_cpu_model()}, {pool.cores()} cores available",
             f"llvm target: {engine.triple}, cpu {engine.cpu} (host {engine.host_cpu}); "
             f"ISA {' '.join(isa) or '(baseline)'}; {width}",
             f"blas: {found.path if found else 'none'} ({config or 'no config string'})",
             f"threads: gradjit {threads.num_threads()} (pool workers up to "
             f"{pool.cores() - 1}); BLAS before gradjit binds it {blas.get_num_threads()}"]
    if found is not None:
        blas.register()
        lines.append(f"threads: BLAS while gradjit runs {blas.get_num_threads()} "
                     f"(GRADJIT_BLAS_THREADS={os.environ.get('GRADJIT_BLAS_THREADS', '1')})")
    return lines


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---- issue 13's table --------------------------------------------------------------------

def mlp_loop(seconds: float) -> float:
    """Median seconds of the MLP 784-256-10 (batch 256) value_and_grad, called in a loop."""
    import gradjit as gj
    from benchmarks import workloads
    w = workloads.mlp(gj)
    run = w.systems[0].run
    for _ in range(20):
        run()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 20:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def mlp_interleaved(seconds: float) -> tuple[float, float]:
    """(1-thread, default) median seconds of the MLP, alternating in one process (batches of
    5 calls each), so that machine noise hits both alike."""
    import gradjit as gj
    from benchmarks import workloads
    from runtime import threads
    run = workloads.mlp(gj).systems[0].run
    default = threads.default_num_threads()
    times = {1: [], default: []}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times[1]) < 20:
        for n in times:
            threads.set_num_threads(n)
            run()
            for _ in range(5):
                t0 = time.perf_counter()
                run()
                times[n].append(time.perf_counter() - t0)
    threads.set_num_threads(None)
    return statistics.median(times[1]), statistics.median(times[default])


def _mlp_processes(n: int, env: dict, seconds: float) -> list[float]:
    """n processes timing the MLP at once; their medians in seconds."""
    cmd = [sys.executable, "-m", "benchmarks.load", "mlp-loop", str(seconds)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    out = [p.communicate()[0] for p in procs]
    found = [re.search(r"median_seconds=(\S+)", o) for o in out]
    if not all(found):
        raise RuntimeError(f"mlp-loop failed: {out}")
    return [float(m.group(1)) for m in found]


def _interleaved(env: dict, seconds: float) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "benchmarks.load", "mlp-ab", str(seconds)]
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
    one, default = re.search(r"one=(\S+) default=(\S+)", out).groups()
    return float(one), float(default)


def _env(one_thread: bool) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GRADJIT_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                        "MKL_NUM_THREADS", "GRADJIT_BLAS_THREADS")}
    if one_thread:
        env["GRADJIT_NUM_THREADS"] = "1"
    return env


def pool_table(seconds: float = 3.0, rounds: int = 3) -> list[str]:
    """Issue 13's table, `rounds` interleaved rounds, medians over rounds; ratios to targets."""
    from runtime import pool
    cores = pool.cores()
    rows = {"alone, GRADJIT_NUM_THREADS=1": [], "alone, default": [],
            "two at once, default (each)": [], f"default, {cores} busy loops": []}
    for _ in range(rounds):
        rows["alone, GRADJIT_NUM_THREADS=1"] += _mlp_processes(1, _env(True), seconds)
        rows["alone, default"] += _mlp_processes(1, _env(False), seconds)
        rows["two at once, default (each)"] += _mlp_processes(2, _env(False), seconds)
        with busy_loops(cores):
            rows[f"default, {cores} busy loops"] += _mlp_processes(1, _env(False), seconds)
    med = {k: statistics.median(v) for k, v in rows.items()}
    base = med["alone, GRADJIT_NUM_THREADS=1"]
    targets = [1.0, 1.0, 1.5, 2.5]
    one, default = _interleaved(_env(False), seconds * rounds)
    lines = [f"MLP 784-256-10 batch 256 value_and_grad, one process alternating 1 thread and "
             f"the default: {one * 1e3:.3f} vs {default * 1e3:.3f} ms, default/1-thread "
             f"{default / one:.2f}x (target <= 1x)"]
    with busy_loops(cores):
        one, default = _interleaved(_env(False), seconds * rounds)
    lines.append(f"  the same with {cores} busy loops: {one * 1e3:.3f} vs {default * 1e3:.3f} ms,"
                 f" {default / one:.2f}x")
    lines.append(f"MLP 784-256-10 batch 256 value_and_grad, median of {rounds} rounds x "
                 f"{seconds:g} s; ratio to alone at 1 thread")
    for (name, t), target in zip(med.items(), targets):
        ok = "ok" if t / base <= target else "MISSED"
        lines.append(f"  {name:34s} {t * 1e3:8.3f} ms  {t / base:5.2f}x  (target <= "
                     f"{target:g}x: {ok})  all: "
                     + " ".join(f"{x * 1e3:.2f}" for x in rows[name]))
    return lines


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "mlp-ab":
        print("one={} default={}".format(*mlp_interleaved(float(sys.argv[2]))))
    elif len(sys.argv) >= 2 and sys.argv[1] == "mlp-loop":
        print(f"median_seconds={mlp_loop(float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)}")
    else:
        print(__doc__)
