"""GRADJIT_LOG: compile phases, per-kernel lines, and GRADJIT_LOG=json events."""
import json
import logging

import numpy as np

import gradjit as gj
import runtime
from runtime import config


def events(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_compile_is_broken_down_by_phase_and_kernels_are_listed(gradjit_env, caplog):
    gradjit_env("GRADJIT_LOG", "1")
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    runtime.clear_cache()
    f = gj.value_and_grad(lambda x: gj.sum(gj.tanh(x * 1.25) ** 2))
    with caplog.at_level(logging.INFO, logger="gradjit"):
        f(np.linspace(0, 1, 777, dtype=np.float32))
    (trace,) = events(caplog, "trace")
    assert set(trace.fields["phases_ms"]) == {"trace", "optimise"}
    compiles = events(caplog, "compile")
    assert len(compiles) == 1
    phases_ms = compiles[0].fields["phases_ms"]
    assert {"codegen", "llvm"} <= set(phases_ms)
    assert sum(phases_ms.values()) <= compiles[0].fields["ms"] * 1.01 + 0.1
    assert "codegen" in compiles[0].getMessage() and "llvm" in compiles[0].getMessage()
    kernels = events(caplog, "kernel")
    assert [k.fields["kind"] for k in kernels] == ["loop nest"]     # forward+backward fused
    assert kernels[0].fields["bytes_read"] == 777 * 4


def test_json_lines_are_one_object_per_event(gradjit_env, caplog):
    gradjit_env("GRADJIT_LOG", "json")
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    runtime.clear_cache()
    if config._handler is not None:          # gradjit's own stderr handler writes JSON
        assert isinstance(config._handler.formatter, config._JsonFormatter)
    with caplog.at_level(logging.INFO, logger="gradjit"):
        gj.jit(lambda x: gj.exp(x) + 2.5)(np.ones(5, np.float32))
    formatter = config._JsonFormatter()
    parsed = [json.loads(formatter.format(r)) for r in caplog.records if r.name == "gradjit"]
    assert {"trace", "compile", "kernel"} <= {p["event"] for p in parsed}
    compile_event = next(p for p in parsed if p["event"] == "compile")
    assert compile_event["function"] and "llvm" in compile_event["phases_ms"]
    assert all(isinstance(p["message"], str) and p["time"] > 0 for p in parsed)


def test_nobody_watching_times_nothing(gradjit_env):
    gradjit_env("GRADJIT_LOG", None)
    from runtime import phases
    assert not config.logging_enabled() and not phases.watching()
    with phases.collect() as times:
        with phases.phase("codegen"):
            pass
    assert times == {}


def test_profile_sessions_show_compile_phases_as_spans(gradjit_env):
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    runtime.clear_cache()
    with gj.profile(kernels=False) as prof:
        gj.jit(lambda x: gj.sin(x) * 3.5)(np.ones(7, np.float32))
    names = {e["name"] for e in prof.events if e["cat"] == "compile"}
    assert {"trace", "codegen", "llvm"} <= names


def test_a_line_starts_with_gradjit_once():
    formatter = config._TextFormatter("%(message)s")

    def line(message):
        return formatter.format(logging.LogRecord("gradjit", logging.WARNING, __file__, 1,
                                                  message, None, None))
    assert line("compiled f") == "gradjit: compiled f"
    # (the warnings of runtime.trampoline, shared_code and blas_tiles carry the prefix)
    assert line("gradjit: call trampolines unavailable") == \
        "gradjit: call trampolines unavailable"
