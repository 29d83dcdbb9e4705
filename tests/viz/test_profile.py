"""gj.profile: counts equal calls, times within the wall time, Chrome trace format."""
import json

import numpy as np

import gradjit as gj
from runtime.executable import Executable
from runtime.profile import _original_run


def chain(x):
    return gj.sum(gj.tanh(gj.exp(gj.sin(x)) * 2.0))


X = np.linspace(-1, 1, 100_000, dtype=np.float32)


def test_counts_equal_calls_and_times_fit_in_the_wall_time():
    f = gj.value_and_grad(chain)
    f(X)
    with gj.profile() as prof:
        for _ in range(7):
            f(X)
    programs = list(prof.programs.values())
    assert [p.calls for p in programs] == [7]
    kernels = list(prof.kernel_stats.values())
    assert len(kernels) == 1 and kernels[0].calls == 7      # chain: one fused loop nest
    assert 0 < kernels[0].seconds <= programs[0].seconds * 1.05
    assert programs[0].seconds <= prof.wall
    assert programs[0].bytes == 7 * (X.nbytes * 2 + 4)       # x in, grad + value out
    table = prof.table()
    assert "@chain_value_and_grad" in table and "GB/s" in table


def test_results_are_unchanged_while_profiling():
    f = gj.value_and_grad(chain)
    plain = f(X)
    with gj.profile():
        profiled = f(X)
    np.testing.assert_array_equal(np.asarray(plain[1]), np.asarray(profiled[1]))
    assert float(plain[0]) == float(profiled[0])


def test_off_costs_nothing_the_original_run_is_back():
    with gj.profile(kernels=False) as prof:
        assert Executable.run is not _original_run
        gj.jit(chain)(X)
    assert Executable.run is _original_run
    assert list(prof.kernel_stats) == []
    with gj.profile():
        with gj.profile():                  # nested sessions: the outer one stays active
            pass
        assert Executable.run is not _original_run
    assert Executable.run is _original_run


def test_gemm_kernels_report_flops():
    def mlp(w, x):
        return (gj.tanh(x @ w) ** 2).mean()
    w = np.ones((256, 64), np.float32) * 0.01
    x = np.ones((128, 256), np.float32)
    f = gj.value_and_grad(mlp)
    with gj.profile() as prof:
        f(w, x)
    flops = sorted(k.flops for k in prof.kernel_stats.values() if k.flops)
    assert flops == [2 * 128 * 256 * 64, 2 * 128 * 256 * 64]


def test_chrome_trace_is_valid_trace_event_json(tmp_path):
    f = gj.value_and_grad(chain)
    with gj.profile() as prof:
        for _ in range(3):
            f(X)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    assert {e["cat"] for e in spans} >= {"program", "kernel"}
    for e in spans:
        assert {"name", "ts", "dur", "pid", "tid"} <= set(e) and e["dur"] >= 0
    programs = [e for e in spans if e["cat"] == "program"]
    kernels = [e for e in spans if e["cat"] == "kernel"]
    assert len(programs) == 3 and len(kernels) == 3
    for p, k in zip(programs, kernels):                    # kernels nest in their program
        assert p["ts"] <= k["ts"] and k["ts"] + k["dur"] <= p["ts"] + p["dur"] * 1.05 + 5


def test_imperative_training_step_is_profiled():
    gj.manual_seed(0)
    model = gj.nn.Sequential(gj.nn.Linear(8, 16), gj.nn.ReLU(), gj.nn.Linear(16, 1))
    opt = gj.optim.SGD(model.parameters(), lr=0.1)
    x, y = gj.randn(32, 8), gj.randn(32, 1)
    with gj.profile() as prof:
        for _ in range(3):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
    assert sum(p.calls for p in prof.programs.values()) >= 3
