"""pytorch/tutorials' polynomial_tensor.py step on a captured tape (tracer/step_capture.py):
the tutorial's loop bitwise against capture off and close to NumPy float64; the pinned
`y = sin(x)` computed once per tape (the read's program takes it as an input) and refused
over NumPy-writable memory; add_/sub_ taken straight from the method (inplace.py's
_followed_method) with inplace()'s checks; the user's line of a followed call found from
the event's call site (step_follow._site) and right when the site changes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from ir.printer import print_function
from tests.api.capture_check import assert_bitwise, plain_capture, run_off_and_on  # noqa: F401
from tracer import step_capture
from tracer.autograd import inplace as inplace_module
from tracer.expr import build_function


pytestmark = pytest.mark.usefixtures("plain_capture")    # capture reset around each test


@pytest.fixture(autouse=True)
def fresh_capture(monkeypatch):
    monkeypatch.setattr(step_capture, "PIN_ONCE", True)
    monkeypatch.setattr(step_capture, "PIN_AFTER", 0)   # (pinned from the first read from a tape)


def tutorial(steps: int, dtype=gj.float32, n: int = 2000, lr: float = 1e-6, x=None,
             change=None) -> list:
    """polynomial_tensor.py's loop as written there (keyword matmul, four `-=`), its losses
    and final coefficients."""
    if x is None:
        x = gj.linspace(-math.pi, math.pi, n, dtype=dtype)
    y = gj.sin(x)
    rng = np.random.default_rng(0)
    a, b, c, d = [gj.tensor(v, dtype=dtype) for v in rng.standard_normal(4) * 0.1]
    out = []
    for t in range(steps):
        if change is not None:
            change(t, x)
        y_pred = a + (b * x) + (c * x.pow(2)) + (d * x.pow(3))
        loss = (y_pred - y).pow(2).sum().item()
        out.append(loss)
        grad_y_pred = -2.0 * (y - y_pred)
        grad_a = grad_y_pred.sum()
        grad_b = gj.matmul(input=grad_y_pred, other=x).sum()
        grad_c = gj.matmul(input=grad_y_pred, other=x.pow(2)).sum()
        grad_d = gj.matmul(input=grad_y_pred, other=x.pow(3)).sum()
        a -= lr * grad_a
        b -= lr * grad_b
        c -= lr * grad_c
        d -= lr * grad_d
    return out + [v.numpy().copy() for v in (a, b, c, d)]


run_both = run_off_and_on


def test_the_tutorial_loop_follows_bitwise_with_sin_computed_once():
    step_capture.VERIFY = True          # each pinned read also runs the learnt program
    on, delta, off = run_both(tutorial, 300)
    assert_bitwise(on, off)
    assert delta["tapes"] == 1
    assert delta["reads"] >= 290 and delta["pinned"] == delta["reads"]
    assert delta["calls"] >= 290 * 30


def test_pinning_off_gives_the_same_bits():
    on = tutorial(120)
    step_capture.reset()
    step_capture.PIN_ONCE = False
    before = dict(step_capture.STATS)
    unpinned = tutorial(120)
    assert step_capture.STATS["pinned"] == before["pinned"]
    assert step_capture.STATS["reads"] - before["reads"] >= 110
    assert_bitwise(on, unpinned)


def test_pinning_waits_for_its_reads_and_compiles_two_programs_then():
    """PIN_AFTER reads from the tape run the learnt program; then the pinned values' and the
    pinned read's programs are compiled once, and later reads compile nothing."""
    import runtime
    step_capture.PIN_AFTER = 5
    compiles = []

    def change(t, x):
        compiles.append(runtime.cache_info()["misses"])
    on, delta, off = run_both(tutorial, 20, n=96, change=change)
    assert_bitwise(on, off)
    assert delta["pinned"] == delta["reads"] - 5 > 0
    steps = compiles[20:]               # (the run with capture on)
    grew = [t for t in range(1, 20) if steps[t] != steps[t - 1]]
    # the learnt program's compiles in the first steps, two more when pinning starts
    assert steps[-1] - steps[grew[-1] - 1] <= 2 and grew[-1] < 20 - 8


def numpy_tutorial(steps: int, n: int, lr: float) -> list:
    """The same loop in NumPy float64."""
    x = np.linspace(-math.pi, math.pi, n)
    y = np.sin(x)
    a, b, c, d = np.random.default_rng(0).standard_normal(4) * 0.1
    out = []
    for _ in range(steps):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        out.append(((y_pred - y) ** 2).sum())
        g = -2.0 * (y - y_pred)
        a, b, c, d = (a - lr * g.sum(), b - lr * (g @ x), c - lr * (g @ x ** 2),
                      d - lr * (g @ x ** 3))
    return out + [a, b, c, d]


def test_float64_follows_numpy():
    got = tutorial(200, dtype=gj.float64, n=500, lr=1e-5)
    assert step_capture.STATS["pinned"] > 0
    want = numpy_tutorial(200, 500, 1e-5)
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want), rtol=1e-9)


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 300), f64=st.booleans(), steps=st.integers(6, 12),
       lr=st.sampled_from([1e-6, 1e-4, 0.0, 3e-3]))
def test_random_sizes_and_rates_equal_capture_off(n, f64, steps, lr):
    dtype = gj.float64 if f64 else gj.float32
    on, delta, off = run_both(tutorial, steps, dtype=dtype, n=n, lr=lr)
    assert_bitwise(on, off)
    assert delta["reads"] >= steps - 5 and delta["pinned"] == delta["reads"]


@pytest.mark.parametrize("read_only_view", [False, True])
def test_writable_numpy_memory_behind_the_pin_is_not_pinned(read_only_view):
    """x from NumPy (shared memory, or a read-only view of writable memory): a write to the
    array between steps changes sin(x) as capture off sees it; its value is never computed
    once."""
    def loop(steps):
        arr = np.linspace(-1.0, 1.0, 64).astype(np.float32)
        view = arr[:]
        if read_only_view:
            view.flags.writeable = False
        x = gj.from_numpy(view)

        def change(t, _x):
            if t == 8:
                arr[3] = 0.75

        return tutorial(steps, x=x, change=change, lr=1e-3)
    on, delta, off = run_both(loop, 14)
    assert_bitwise(on, off)
    assert delta["pinned"] == 0 and delta["reads"] > 0


@pytest.mark.parametrize("how", ["round trip", "through numpy()"])
def test_a_write_behind_the_pin_between_reads_is_seen(how):
    """x over NumPy memory that is read-only when the pin is made; between two reads the
    user makes it writable, writes and makes it read-only again (from_numpy's own array,
    or the array x.numpy() handed out): the pinned read sees the change (its leaves' bytes
    are compared with those the pinned values were computed from) and the values stay those
    of capture off."""
    def loop(steps):
        arr = np.linspace(-1.0, 1.0, 64).astype(np.float32)
        if how == "round trip":
            arr.flags.writeable = False
            x = gj.from_numpy(arr)
        else:
            x = gj.tensor(arr)
            host = x.numpy()
            host.flags.writeable = False
            arr = host

        def change(t, _x):
            if t == 9:
                arr.flags.writeable = True
                arr[3] = 0.75
                arr.flags.writeable = False

        return tutorial(steps, x=x, change=change, lr=1e-3)
    on, delta, off = run_both(loop, 16)
    assert_bitwise(on, off)
    assert delta["pinned"] >= 3              # pinned before the write (and a read after it
    assert delta["reads"] > delta["pinned"]  # ran the learnt program)


def test_a_pinned_value_read_ends_pinning_with_the_same_values():
    """Reading y mid-loop settles it: the tape's pin check sees it and drops the tape; a new
    tape has no pin (y holds data) and the values stay bitwise."""
    def loop(steps):
        x = gj.linspace(-2.0, 2.0, 100)
        y = gj.sin(x)
        a, b = gj.tensor(0.3), gj.tensor(-0.2)
        out = []
        for t in range(steps):
            if t == 7:
                out.append(y.numpy().copy())
            p = a + b * x
            out.append((p - y).pow(2).sum().item())
            g = -2.0 * (y - p)
            a -= 1e-3 * g.sum()
            b -= 1e-3 * gj.matmul(g, x)
        return out + [a.numpy().copy(), b.numpy().copy()]
    on, delta, off = run_both(loop, 16)
    assert_bitwise(on, off)
    assert delta["pinned"] >= 2 and delta["reads"] > delta["pinned"]


# ---- add_ / sub_ straight from the method -------------------------------------------------

def update_loop(steps: int, kind: str) -> list:
    x = gj.linspace(-1.0, 1.0, 32)
    w = gj.tensor(0.5)
    out = []
    for t in range(steps):
        g = ((w * x - x) * x).sum()
        out.append(g.item())
        if kind == "sub":
            w -= 0.1 * g
        elif kind == "add":
            w += -0.1 * g
        elif kind == "sub_ method":
            w.sub_(0.1 * g)
        elif kind == "alpha":
            w.sub_(g, alpha=0.1)
        elif kind == "numpy host" and t == 5:
            out.append(w.numpy().copy())     # w now shares memory with NumPy
            w -= 0.1 * g
        else:
            w -= 0.1 * g
        out.append(w._version)
    return out + [w.numpy().copy()]


@pytest.mark.parametrize("kind", ["sub", "add", "sub_ method", "alpha", "numpy host"])
def test_in_place_updates_equal_capture_off(kind, monkeypatch):
    general = []                         # updates that took inplace() (not the method's own)
    original = inplace_module.inplace

    def counting(*args, **kwargs):
        general.append(1)
        return original(*args, **kwargs)
    monkeypatch.setattr(inplace_module, "inplace", counting)
    # inplace()'s own shortcut for an update the capture does not follow (inplace._direct,
    # tests/api/test_two_layer_step.py) off: every update not followed counts here
    monkeypatch.setattr(inplace_module, "DIRECT", False)
    step_capture.ENABLED = False
    step_capture.reset()
    off = update_loop(14, kind)
    assert len(general) == 14
    step_capture.ENABLED = True
    step_capture.reset()
    before = dict(step_capture.STATS)
    del general[:]
    on = update_loop(14, kind)
    delta = {k: step_capture.STATS[k] - before[k] for k in before}
    assert_bitwise(on, off)
    # followed updates skip inplace(); one with alpha never does, nor one on memory shared
    # with NumPy (steps 5..13)
    if kind == "alpha":
        assert len(general) == 14
    elif kind == "numpy host":
        assert 9 <= len(general) < 14
    else:
        assert len(general) <= 14 - 8
    # (with NumPy sharing w's memory from step 5 on, each update is computed at once)
    assert delta["reads"] >= (1 if kind == "numpy host" else 8)


def test_followed_update_checks_as_inplace_does():
    """A followed `w -= g` whose result has another shape raises inplace()'s error; one on a
    leaf that requires grad raises PyTorch's; after either the loop goes on as capture off."""
    def loop(steps, bad):
        x = gj.linspace(-1.0, 1.0, 16)
        w = gj.tensor(0.5)
        out = []
        for t in range(steps):
            g = (w * x).sum()
            out.append(g.item())
            if t == 9 and bad == "shape":
                with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
                    w -= 0.1 * x
            elif t == 9 and bad == "grad":
                w.requires_grad_(True)
                with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
                    w -= 0.1 * g
                w.requires_grad_(False)
            w -= 0.1 * g
        return out + [w.numpy().copy(), w._version]
    for bad in ("shape", "grad"):
        on, delta, off = run_both(loop, 14, bad)
        assert_bitwise(on, off)
        assert delta["reads"] >= 4


# ---- the user's line of a followed call -------------------------------------------------

def _scaled_here(b, x):
    return b * x                         # line A


def _scaled_there(b, x):
    return b * x                         # line B


def site_loop(steps: int, switch_at: int) -> list:
    x = gj.linspace(-1.0, 1.0, 8)
    b = gj.tensor(0.25)
    kept = []
    for t in range(steps):
        h = (_scaled_there if t >= switch_at else _scaled_here)(b, x)
        kept.append(h)
        (h * x).sum().item()
        b -= 0.01 * (h - x).sum()
    return kept


def _line_of(fn) -> str:
    import inspect
    lines, start = inspect.getsourcelines(fn)
    return f"test_step_capture_poly.py:{start + 1}"


def test_a_followed_call_names_the_line_of_its_current_call_site():
    before = dict(step_capture.STATS)
    kept = site_loop(12, 8)
    assert step_capture.STATS["calls"] - before["calls"] >= 3 * 5
    # the event's site is kept (gradjit frames on the way, the user's code and f_lasti)
    sites = step_capture.tls.s.tape.sites
    assert any(site is not None and site[1] is _scaled_there.__code__ for site in sites)
    for t, h in enumerate(kept):
        fn, _ = build_function("f", [], [h._expr])
        text = print_function(fn, locs=True)
        here, there = _line_of(_scaled_here), _line_of(_scaled_there)
        assert (there if t >= 8 else here) in text
        assert (here if t >= 8 else there) not in text


def test_the_same_call_site_through_other_frames_is_found_again():
    """The event's site is cached with the gradjit frames on the way: a call of the same
    event through `torch.matmul` and then `x @ y` (other wrapper frames) names each line."""
    def loop(steps, switch_at):
        x = gj.linspace(-1.0, 1.0, 8)
        b = gj.tensor(0.25)
        kept = []
        for t in range(steps):
            g = b * x
            m = gj.matmul(g, x) if t < switch_at else g @ x
            kept.append(m)                   # (pending: the read is of m + 0.0)
            (m + 0.0).item()
            b -= 0.01 * m
        return kept
    kept = loop(12, 8)
    import inspect
    src, start = inspect.getsourcelines(loop)
    matmul_line = start + [i for i, s in enumerate(src) if "gj.matmul(g, x) if" in s][0]
    for m in kept:
        fn, _ = build_function("f", [], [m._expr])
        text = print_function(fn, locs=True)
        assert f"test_step_capture_poly.py:{matmul_line}" in text


def test_an_error_in_a_followed_step_names_the_users_line():
    def loop():
        x = gj.linspace(-1.0, 1.0, 8)
        b = gj.tensor(0.25)
        for _ in range(8):
            g = b * x
            g.sum().item()
            b -= 0.01 * g.sum()
        return gj.matmul(b * x, gj.ones(3))   # a followed b * x, then a bad matmul
    import inspect
    src, start = inspect.getsourcelines(loop)
    line = start + [i for i, s in enumerate(src) if "a bad matmul" in s][0]
    with pytest.raises(Exception, match=f"test_step_capture_poly.py:{line}"):
        loop()


def test_logging_names_a_pin_refusal_and_reads_through_run_function(gradjit_env, caplog):
    """GRADJIT_LOG=1 (not plain native: every read goes through tensor.run_function): a pin
    over NumPy memory is refused with its reason logged; a pinned tape still reads pinned,
    with the values capture off gives."""
    import logging
    gradjit_env("GRADJIT_LOG", "1")
    caplog.set_level(logging.INFO, logger="gradjit")
    on, delta, off = run_both(tutorial, 12, n=64)
    assert_bitwise(on, off)
    assert delta["pinned"] == delta["reads"] >= 6

    def shared(steps):
        return tutorial(steps, x=gj.from_numpy(np.linspace(-1.0, 1.0, 64).astype(np.float32)))
    on, delta, off = run_both(shared, 12)
    assert_bitwise(on, off)
    assert delta["pinned"] == 0 and delta["reads"] >= 6
    assert "values pinned before the loop are computed by each read" in caplog.text


def test_leaves_too_large_to_compare_are_not_pinned(monkeypatch):
    monkeypatch.setattr(step_capture, "_MAX_PIN_BYTES", 4 * 64 - 1)   # x: 64 float32
    on, delta, off = run_both(tutorial, 12, n=64)
    assert_bitwise(on, off)
    assert delta["pinned"] == 0 and delta["reads"] > 0
    monkeypatch.setattr(step_capture, "_MAX_PIN_BYTES", 4 * 64)
    on, delta, off = run_both(tutorial, 12, n=64)
    assert_bitwise(on, off)
    assert delta["pinned"] > 0
