"""Machine code on two threads (runtime/llvm_split.py): a program's kernels are cut into two
modules whose objects are emitted in parallel and linked into one MCJIT. Checked: results
bitwise equal to the one-module compile (benchmark programs and generated ones), side A's
machine code byte-identical and side B's the same instruction mix, errors raised on the
calling thread, two user threads compiling at once, every refusal falling back to one
module, disk-cache entries of split compiles loading. Counters, never timings."""
import re
import threading

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradjit as gj
import runtime
from benchmarks.objectives import gmm_objective, lower_index, lstm_loss
from runtime import config, engine, llvm_split, threads, tiers
from runtime.disk_cache import DISK

REAL_IDLE_CORE = llvm_split.idle_core


def _gmm_args(k=3, n=7, d=3):
    rng = np.random.default_rng(2)
    return [rng.standard_normal(k), rng.standard_normal((k, d)),
            rng.standard_normal((k, d + d * (d - 1) // 2)) * 0.1, rng.standard_normal((n, d))]


def _gmm(a, mu, q, x):
    take = lambda t, i: t[:, gj.tensor(i)]  # noqa: E731
    return gmm_objective(gj, take, gj.logsumexp, a, mu, q, x, lower_index(x.shape[1]))


def _lstm_args(steps=3, batch=2, hidden=4):
    rng = np.random.default_rng(3)
    return [rng.standard_normal((2 * hidden, 4 * hidden)) * 0.1, np.zeros(4 * hidden),
            rng.standard_normal((2 * hidden, 4 * hidden)) * 0.1, np.zeros(4 * hidden),
            rng.standard_normal((steps, batch, hidden))]


def _lstm(*a):
    return lstm_loss(gj, gj.scan, *a, a[-1].shape[-1])


def _run(f, args, argnums):
    value, grads = gj.jit(gj.value_and_grad(f, argnums=argnums))(*args)
    return [np.asarray(value)] + [np.asarray(g) for g in grads]


def _same_bits(expected: list, got: list):
    for e, g in zip(expected, got, strict=True):
        assert e.dtype == g.dtype and e.shape == g.shape
        assert e.tobytes() == g.tobytes()


def _both_ways(split, f, args, argnums):
    split(False)
    whole_before = llvm_split.counts["whole"]
    expected = _run(f, args, argnums)
    assert llvm_split.counts["whole"] > whole_before
    split(True)
    before = llvm_split.counts["split"]
    got = _run(f, args, argnums)
    assert llvm_split.counts["split"] > before, "the program was not split"
    return expected, got


@pytest.mark.parametrize("name", ["gmm", "lstm"])
def test_benchmark_programs_bitwise(split, name):
    f, args, argnums = {"gmm": (_gmm, _gmm_args(), (0, 1, 2)),
                        "lstm": (_lstm, _lstm_args(), (0, 1, 2, 3))}[name]
    _same_bits(*_both_ways(split, f, args, argnums))


def _program(ops: list):
    """sum over i of reduce(op_i(x @ w_i)): one kernel (or more) per term."""
    unary = {"tanh": gj.tanh, "exp": lambda v: gj.exp(-v * v), "sin": gj.sin,
             "relu": lambda v: gj.maximum(v, 0.0), "log1p": lambda v: gj.log1p(v * v)}

    def f(x, *ws):
        total = 0.0
        for name, axis, w in zip(ops, [i % 2 for i in range(len(ops))], ws):
            total = total + gj.sum(gj.max(unary[name](x @ w), axis=axis) ** 2)
        return total
    return f


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # use() resets
@given(ops=st.lists(st.sampled_from(["tanh", "exp", "sin", "relu", "log1p"]), min_size=2,
                    max_size=5),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 16))
def test_generated_programs_bitwise(split, ops, dtype, seed):
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal((5, 6)).astype(dtype)]
    args += [rng.standard_normal((6, 3 + i)).astype(dtype) for i in range(len(ops))]
    _same_bits(*_both_ways(split, _program(ops), args, tuple(range(len(args)))))


# ---- the machine code ----------------------------------------------------------------------

def _program_text(f, args) -> tuple[str, str, int]:
    """(module text codegen made, entry symbol, pipeline level) of f's value_and_grad."""
    fn = gj.make_ir(gj.value_and_grad(f, argnums=tuple(range(len(args) - 1))))(*args)
    low = runtime.lower(fn)
    return low.llvm_ir, low.kernel.entry, tiers.speed_level(fn)


def _functions(asm: str) -> dict:
    """{function: its assembly lines}, label numbers (which count functions) normalised."""
    out, current = {}, None
    for line in asm.splitlines():
        m = re.match(r'^("?[^\s"]+"?):', line)
        if m and not line.startswith(".L"):
            current = m.group(1).strip('"')
            out[current] = []
        elif current and line.startswith(".Lfunc_end"):
            current = None
        elif current:
            out[current].append(re.sub(r"\.L(BB|CPI|func_end|tmp|jt)\d+_", r".L\1_", line))
    return out


def test_machine_code_side_a_identical_side_b_same_instruction_mix(split):
    text, entry, level = _program_text(_gmm, _gmm_args())
    eng = engine.create_execution_engine()
    p = llvm_split.plan(text, entry)
    assert p is not None and p.exported
    # side A: the optimised module itself, marked; byte-identical to the whole compile's
    whole = _functions(eng._machine(level).emit_assembly(
        eng.optimize(eng.parse(text, "t", llvm.create_context()), level)))
    mod = eng.optimize(eng.parse(text, "t", llvm.create_context()), level)
    bitcode = mod.as_bitcode()
    side_a = _functions(_marked_assembly(eng, mod, p, "a", level))
    side_b = _functions(_marked_assembly(eng, llvm_split._read_bitcode(bitcode), p, "b",
                                         level))
    assert set(side_a) | set(side_b) == set(whole)
    assert set(side_b) >= p.exported and entry in side_a and entry not in side_b
    for name, lines in side_a.items():
        assert lines == whole[name], name
    for name, lines in side_b.items():      # the same instructions (registers may differ)
        assert _mnemonics(lines) == _mnemonics(whole[name]), name


def _mnemonics(lines: list) -> list:
    return sorted(line.split()[0] for line in lines if line.startswith("\t") and line.split())


def _marked_assembly(eng, mod, p, side: str, level: int) -> str:
    """The assembly of one side (the module marked as _side marks it)."""
    emit = p.emit_a if side == "a" else p.emit_b
    for f in mod.functions:
        if not f.is_declaration and f.name not in emit:
            f.linkage = llvm.Linkage.available_externally
            f.add_function_attribute("noinline")
            f.add_function_attribute("optnone")
        elif not f.is_declaration and side == "b" and f.name in p.exported:
            f.linkage = llvm.Linkage.external
    return eng._machine(level).emit_assembly(mod)


# ---- errors and threads --------------------------------------------------------------------

def test_error_on_the_second_thread_is_raised_in_the_caller(split, monkeypatch):
    split(True)
    seen = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args))
    real = llvm_split._side

    def failing(mod, p, side, machine):
        if side == "b":
            raise RuntimeError("LLVM ERROR: Cannot select: injected")
        return real(mod, p, side, machine)
    monkeypatch.setattr(llvm_split, "_side", failing)
    with pytest.raises(runtime.CompileError, match="Cannot select: injected") as info:
        _run(_gmm, _gmm_args(), (0, 1, 2))
    assert "gj_" in str(info.value)
    assert seen == []                      # not printed or lost on the worker thread
    monkeypatch.setattr(llvm_split, "_side", real)      # nothing half-made was kept
    _same_bits(*_both_ways(split, _gmm, _gmm_args(), (0, 1, 2)))


def test_two_user_threads_compile_at_once(split):
    split(False)
    expected = {"gmm": _run(_gmm, _gmm_args(), (0, 1, 2)),
                "lstm": _run(_lstm, _lstm_args(), (0, 1, 2, 3))}
    split(True)
    before = llvm_split.counts["split"]
    results, errors = {}, []
    start = threading.Barrier(2)

    def work(name, f, args, argnums):
        try:
            start.wait()
            results[name] = _run(f, args, argnums)
        except BaseException as e:     # reported below
            errors.append(e)
    workers = [threading.Thread(target=work, args=("gmm", _gmm, _gmm_args(), (0, 1, 2))),
               threading.Thread(target=work, args=("lstm", _lstm, _lstm_args(),
                                                   (0, 1, 2, 3)))]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers), "deadlock"
    assert errors == []
    assert llvm_split.counts["split"] >= before + 2
    for name in expected:
        _same_bits(expected[name], results[name])


# ---- refusals fall back to one module ------------------------------------------------------

def test_one_kernel_program_is_not_split(split):
    split(True)
    before = dict(llvm_split.counts)
    x = np.linspace(-1, 1, 4096, dtype=np.float32)
    _run(lambda x, w: gj.sum(gj.tanh(x * w) ** 2), [x, x], (0, 1))
    assert llvm_split.counts["split"] == before["split"]
    assert llvm_split.counts["whole"] > before["whole"]


def test_one_thread_or_busy_machine_is_not_split(split, monkeypatch):
    monkeypatch.setattr(llvm_split, "idle_core", REAL_IDLE_CORE)
    threads.set_num_threads(1)
    try:
        assert not llvm_split.idle_core()
        split(True)
        before = llvm_split.counts["split"]
        _run(_gmm, _gmm_args(), (0, 1, 2))
        assert llvm_split.counts["split"] == before
    finally:
        threads.set_num_threads(None)


def test_busy_machine_reads_loadavg(monkeypatch, tmp_path):
    from runtime import pool
    monkeypatch.setattr(pool, "cores", lambda: 2)
    monkeypatch.setattr(threads, "num_threads", lambda: 2)
    real_open = open

    def fake(text):
        def opener(path, *a, **k):
            if path == "/proc/loadavg":
                f = tmp_path / "loadavg"
                f.write_text(text)
                return real_open(f, *a, **k)
            return real_open(path, *a, **k)
        return opener
    monkeypatch.setattr("builtins.open", fake("3.1 2.0 1.0 3/150 999\n"))
    assert not llvm_split.idle_core()
    monkeypatch.setattr("builtins.open", fake("0.3 0.2 0.1 1/150 999\n"))
    assert llvm_split.idle_core()


def test_unknown_function_after_optimisation_falls_back(split, monkeypatch):
    split(True)
    monkeypatch.setattr(llvm_split, "usable_after_optimisation", lambda p, mod: False)
    before = dict(llvm_split.counts)
    split(False)
    expected = _run(_gmm, _gmm_args(), (0, 1, 2))
    split(True)
    got = _run(_gmm, _gmm_args(), (0, 1, 2))
    assert llvm_split.counts["split"] == before["split"]
    _same_bits(expected, got)


def test_usable_after_optimisation_sees_new_functions():
    text = ('define internal void @"e.body.s0"() noinline {\n  ret void\n}\n'
            'define void @"e"() {\n  call void @"e.body.s0"()\n  ret void\n}\n')
    refs, lines = llvm_split.call_graph(text)
    assert refs == {"e.body.s0": set(), "e": {"e.body.s0"}} and lines["e"] == 2
    p = llvm_split.Plan({"e"}, {"e.body.s0"}, {"e.body.s0"}, set(refs))
    mod = llvm.parse_assembly(text)
    assert llvm_split.usable_after_optimisation(p, mod)
    extra = llvm.parse_assembly(text + 'define void @"e.body.s0.specialized.1"() {\n'
                                '  ret void\n}\n')
    assert not llvm_split.usable_after_optimisation(p, extra)


def test_plan_refuses_cuts_it_cannot_make(monkeypatch):
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 0)

    def kernel(name, body="  ret void"):
        return f'define internal void @"{name}"() noinline {{\n{body}\n}}\n'
    glue = ('define void @"e"() {\n  call void @"e.body"()\n  ret void\n}\n'
            'define internal void @"e.body"() noinline optnone {\n'
            '  call void @"e.body.s0"()\n  call void @"e.body.s1"()\n  ret void\n}\n')
    two = glue + kernel("e.body.s0", "  %x = add i64 1, 2\n  ret void") + kernel("e.body.s1")
    p = llvm_split.plan(two, "e")
    assert p is not None and len(p.exported) == 1
    assert p.exported <= p.emit_b and not (p.exported & p.emit_a)
    assert {"e", "e.body"} <= p.emit_a
    # one kernel reaches the other: it is not movable, so one movable kernel: no cut
    chained = glue + kernel("e.body.s0", '  call void @"e.body.s1"()\n  ret void') + \
        kernel("e.body.s1")
    assert llvm_split.plan(chained, "e") is None
    assert llvm_split.plan(two, "other") is None           # no such entry
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 10 ** 6)
    assert llvm_split.plan(two, "e") is None                # too small to pay


def test_shared_helper_is_emitted_on_both_sides(monkeypatch):
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 0)
    text = ('define void @"e"() {\n  call void @"e.body"()\n  ret void\n}\n'
            'define internal void @"e.body"() noinline optnone {\n'
            '  call void @"e.body.s0"()\n  call void @"e.body.s1"()\n  ret void\n}\n'
            'define internal void @"e.body.s0"() noinline {\n  call void @"gj.h"()\n'
            '  ret void\n}\n'
            'define internal void @"e.body.s1"() noinline {\n  call void @"gj.h"()\n'
            '  ret void\n}\n'
            'define internal void @"gj.h"() noinline {\n  ret void\n}\n')
    p = llvm_split.plan(text, "e")
    assert p is not None and "gj.h" in p.emit_a and "gj.h" in p.emit_b


# ---- the disk cache ------------------------------------------------------------------------

def test_split_compile_is_stored_and_loads(split, tmp_path):
    split(True)
    config.set_value("GRADJIT_DISK_CACHE", None)
    config.set_value("GRADJIT_CACHE_DIR", str(tmp_path))
    try:
        before, writes = llvm_split.counts["split"], DISK.writes
        first = _run(_gmm, _gmm_args(), (0, 1, 2))
        assert llvm_split.counts["split"] == before + 1 and DISK.writes == writes + 1
        runtime.clear_cache()
        engine.fresh_execution_engine()
        hits = DISK.hits
        again = _run(_gmm, _gmm_args(), (0, 1, 2))
        assert DISK.hits == hits + 1 and llvm_split.counts["split"] == before + 1
        _same_bits(first, again)
    finally:
        config.set_value("GRADJIT_CACHE_DIR", None)


# ---- the helper thread: pool and trampolines built while the kernel compiles ----------------

_FRESH = r"""
import json, sys, threading
import numpy as np
from runtime import llvm_split, pool, trampoline
llvm_split.idle_core = lambda: True
llvm_split.MIN_SIDE_LINES = 0
import gradjit as gj
import runtime
from runtime import engine
from tests.runtime.test_parallel_compile import _gmm, _gmm_args, _lstm, _lstm_args, _run

def chain(x, w):
    return gj.sum(gj.tanh(x * w) ** 2)

def mixed(x, w, a, mu, q, y):     # (machine code split in two, a kernel with a parallel loop)
    return chain(x, w) + _gmm(a, mu, q, y)

x = np.linspace(-1, 1, 1 << 16, dtype=np.float32)
mode = sys.argv[1]
out = {}
if mode == "helper":
    assert not pool.ready() and not trampoline.ready()
    fn = gj.make_ir(gj.value_and_grad(mixed, argnums=(0, 1)))(x, x, *_gmm_args())
    runtime.compile(fn)                                 # compiled, not called
    out = {"helper": llvm_split.counts["helper"], "pool": pool.ready(),
           "trampoline": trampoline.ready(), "errors": llvm_split.counts["helper_errors"]}
elif mode == "helper_one_kernel":     # one kernel (not split): the helper still runs
    assert not pool.ready() and not trampoline.ready()
    builds = trampoline.builds
    fn = gj.make_ir(gj.value_and_grad(chain, argnums=(0, 1)))(x, x)
    exe = runtime.compile(fn)
    out = {"helper": llvm_split.counts["helper"], "split": llvm_split.counts["split"],
           "pool": pool.ready(), "trampoline": exe.has_trampoline,
           "one_module": (trampoline.builds - builds == 1
                          and pool._engine is trampoline._state["jit"]),
           "errors": llvm_split.counts["helper_errors"]}
    got = [np.asarray(a) for a in exe(x, x)]
    llvm_split.ENABLED = False             # the same program without helper (and no split)
    runtime.clear_cache()
    engine.fresh_execution_engine()
    again = runtime.compile(fn)
    out["same"] = all(a.tobytes() == np.asarray(b).tobytes() for a, b in zip(got, again(x, x)))
elif mode == "helper_error":
    def broken(jit):     # (both builds of the pool's code bind it: with the trampolines, alone)
        raise RuntimeError("pool compile failed: injected")
    pool._bind = broken
    fn = gj.make_ir(gj.value_and_grad(mixed, argnums=(0, 1)))(x, x, *_gmm_args())
    runtime.compile(fn)
    out["errors"] = llvm_split.counts["helper_errors"]
    out["pool"] = pool.ready()
    try:
        _run(chain, [x, x], (0, 1))
        out["raised"] = None
    except RuntimeError as e:
        out["raised"] = str(e)
    out["thread"] = threading.current_thread() is threading.main_thread()
elif mode == "threads":
    jobs = {"gmm": (_gmm, _gmm_args(), (0, 1, 2)), "lstm": (_lstm, _lstm_args(), (0, 1, 2, 3)),
            "chain": (chain, [x, x], (0, 1))}
    got, errors = {}, []
    start = threading.Barrier(len(jobs))
    def work(name):
        try:
            start.wait()
            got[name] = _run(*jobs[name])
        except BaseException as e:
            errors.append(repr(e))
    ts = [threading.Thread(target=work, args=(n,)) for n in jobs]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    out["alive"] = sum(t.is_alive() for t in ts)
    out["errors"] = errors
    out["split"] = llvm_split.counts["split"]
    llvm_split.ENABLED = False
    runtime.clear_cache()
    engine.fresh_execution_engine()
    out["same"] = all(a.tobytes() == b.tobytes() for n in jobs
                      for a, b in zip(got[n], _run(*jobs[n]), strict=True))
print(json.dumps(out))
"""


def _fresh(mode: str, tmp_path) -> dict:
    """Runs _FRESH in a new process with an empty disk cache (nothing built yet)."""
    import json
    import os
    import subprocess
    import sys
    env = dict(os.environ, GRADJIT_CACHE_DIR=str(tmp_path / "objects"),
               GRADJIT_SECRET_FILE=str(tmp_path / "secret"), GRADJIT_NUM_THREADS="2")
    env.pop("GRADJIT_DISK_CACHE", None)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", _FRESH, mode], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_helper_builds_pool_and_trampolines_during_the_compile(tmp_path):
    out = _fresh("helper", tmp_path)
    assert out == {"helper": 1, "pool": True, "trampoline": True, "errors": 0}


def test_helper_runs_for_a_one_kernel_program_and_builds_pool_and_trampolines_as_one(tmp_path):
    out = _fresh("helper_one_kernel", tmp_path)
    assert out == {"helper": 1, "split": 0, "pool": True, "trampoline": True,
                   "one_module": True, "errors": 0, "same": True}


def test_helper_error_is_raised_by_the_first_call_on_the_callers_thread(tmp_path):
    out = _fresh("helper_error", tmp_path)
    assert out["errors"] == 1 and out["pool"] is False
    assert out["raised"] is not None and "injected" in out["raised"] and out["thread"]


def test_three_user_threads_compile_at_once_in_a_fresh_process(tmp_path):
    out = _fresh("threads", tmp_path)
    assert out["alive"] == 0, "deadlock"
    assert out["errors"] == [] and out["split"] >= 2 and out["same"]


def test_join_waits_through_a_keyboard_interrupt():
    """A Ctrl-C while the compiling thread waits must not release LLVM_LOCK early."""
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    calls = []

    class Interrupting:
        def join(self):
            calls.append(1)
            if len(calls) == 1:
                raise KeyboardInterrupt
            release.set()
            worker.join()
    with pytest.raises(KeyboardInterrupt):
        llvm_split.join(Interrupting())
    assert len(calls) == 2 and not worker.is_alive()
