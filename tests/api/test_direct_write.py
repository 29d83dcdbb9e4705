"""`x[key] = number` written straight into NumPy when no tensor of the storage has autograd
(tracer/autograd/direct_write.py; char_rnn_classification's `tensor[li][0][k] = 1`): the
same values, versions and errors as the general (recorded) path and as NumPy's own views,
with counters showing which path each write took."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tracer import step_capture
from tracer.autograd import direct_write

_DTYPES = {"f32": (gj.float32, np.float32), "f64": (gj.float64, np.float64),
           "i64": (gj.int64, np.int64), "bool": (gj.bool, np.bool_)}
_FLOAT_VALUES = [0.5, -2.25, -0.0, float("inf"), 0.1, 3e38, 2, -7, True]
_INT_VALUES = [0, 1, -3, 7, True, False]


@pytest.fixture
def general():
    """Runs the test body's second call with the direct path off."""
    yield
    direct_write.ENABLED = True


def _as_written(value, dtype: str):
    """What both paths store for value: NumPy's conversion (a float keeps its double
    precision in f64, as PyTorch: operands.written_as)."""
    return _DTYPES[dtype][1](value)


def _key(shape, raw):
    """A basic index into shape from drawn numbers: per leading axis an int (also
    negative), a slice with a positive step or a full slice; a leading None and a trailing
    Ellipsis (always in range)."""
    out = []
    for size, (kind, a, b, step) in zip(shape, raw):
        if kind == 0 and size:
            out.append(a % size - (size if b % 2 else 0))
        elif kind == 1:
            out.append(slice(a % (size + 1), b % (size + 2), step))
        else:
            out.append(slice(None))
    if raw and raw[-1][0] == 3:
        out.append(Ellipsis)
    if raw and raw[0][0] == 3:
        out.insert(0, None)
    return tuple(out) if len(out) != 1 or raw[0][1] % 2 else out[0]


_raw_key = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 9), st.integers(0, 9),
                              st.integers(1, 3)), min_size=0, max_size=3)
_step = st.one_of(
    st.tuples(st.just("view"), st.integers(0, 99), _raw_key),
    st.tuples(st.just("transpose"), st.integers(0, 99)),
    st.tuples(st.just("detach"), st.integers(0, 99)),
    st.tuples(st.just("snapshot"), st.integers(0, 99)),
    st.tuples(st.just("write"), st.integers(0, 99), _raw_key, st.integers(0, 99)))


def _run(program, shape, dtype: str, lib: str, grad: bool):
    """Runs program on gradjit (lib "gj") or on NumPy's own views (lib "np"): the final
    values of every tensor made (views, aliases, snapshots) and the root's version."""
    gj_dtype, np_dtype = _DTYPES[dtype]
    values = _FLOAT_VALUES if dtype in ("f32", "f64") else _INT_VALUES
    root = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape).astype(np_dtype)
    if lib == "gj":
        root = gj.tensor(root, dtype=gj_dtype)
    pool, snaps = [root], []
    with gj.set_grad_enabled(grad):
        for step in program:
            t = pool[step[1] % len(pool)]
            if step[0] == "view":
                key = _key(t.shape, step[2])
                if len(key if isinstance(key, tuple) else (key,)) > t.ndim + 1:
                    continue
                view = t[key]
                if lib == "np" and not isinstance(view, np.ndarray):
                    entries = key if isinstance(key, tuple) else (key,)
                    view = t[(*entries, Ellipsis)]        # NumPy's 0-d view, not a copy
                pool.append(view)
            elif step[0] == "transpose" and t.ndim >= 2:
                pool.append(t.transpose(0, 1) if lib == "gj" else t.swapaxes(0, 1))
            elif step[0] == "detach":
                pool.append(t.detach() if lib == "gj" else t[...])
            elif step[0] == "snapshot":
                snaps.append(t.clone() if lib == "gj" else t.copy())
            elif step[0] == "write" and (t.size if lib == "np" else t.numel()):
                key = _key(t.shape, step[2])
                if len(key if isinstance(key, tuple) else (key,)) > t.ndim + 1:
                    continue
                value = values[step[3] % len(values)]
                t[key] = value if lib == "gj" else _as_written(value, dtype)
    if lib == "gj":
        return [np.asarray(t.numpy()).copy() for t in pool + snaps], root._version
    return [np.asarray(t).copy() for t in pool + snaps], None


def _same(a: list, b: list):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), (x, y)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       dtype=st.sampled_from(sorted(_DTYPES)), grad=st.booleans(),
       program=st.lists(_step, min_size=1, max_size=12))
def test_direct_writes_equal_the_general_path_and_numpy_views(shape, dtype, grad, program):
    before = dict(direct_write.STATS)
    fast, fast_version = _run(program, shape, dtype, "gj", grad)
    taken = direct_write.STATS["written"] - before["written"]
    direct_write.ENABLED = False
    try:
        slow, slow_version = _run(program, shape, dtype, "gj", grad)
    finally:
        direct_write.ENABLED = True
    assert direct_write.STATS["written"] - before["written"] == taken   # (off: none taken)
    _same(fast, slow)
    assert fast_version == slow_version
    expected, _ = _run(program, shape, dtype, "np", grad)
    _same(fast, expected)


def test_line_to_tensor_takes_the_direct_path_and_counts_versions():
    before = direct_write.STATS["written"]
    t = gj.zeros(5, 1, 7)
    for li, k in enumerate([3, 0, 6, 3, 2]):
        t[li][0][k] = 1
    assert direct_write.STATS["written"] - before == 5
    assert t._version == 5                               # PyTorch: one bump a write
    expected = np.zeros((5, 1, 7), np.float32)
    expected[range(5), 0, [3, 0, 6, 3, 2]] = 1
    assert t.numpy().tobytes() == expected.tobytes()
    assert t._expr.data is not None                      # data, not a pending graph


def test_pending_reader_and_views_see_the_right_values():
    x = gj.zeros(3, 4)
    row, col, alias = x[1], x[:, 2], x.detach()
    y = x * 2 + 1                                       # pending, read after the write
    x[1, 2] = 5
    alias[0, 0] = -1
    assert y.numpy().tolist() == [[1.0] * 4] * 3        # the old value, as PyTorch's
    assert row.tolist() == [0, 0, 5, 0] and col.tolist() == [0, 5, 0]
    assert x.tolist()[0][0] == -1 and x._version == alias._version == row._version == 2


def test_saved_tensor_changed_by_a_direct_write_refuses_backward():
    w = gj.ones(3, requires_grad=True)
    x = gj.zeros(3)
    y = (w * x).sum()                                   # MulBackward0 saved x
    before = direct_write.STATS["written"]
    x[0] = 1
    assert direct_write.STATS["written"] - before == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_autograd_refusals_take_the_general_path():
    w = gj.tensor([1.0, 2.0, 3.0], dtype=gj.float64, requires_grad=True)
    before = dict(direct_write.STATS)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w[0] = 0.0
    h = w * 3
    h[1] = 0.0                                         # recorded: CopySlices
    view = gj.zeros(3, dtype=gj.float64)
    base_of = view[1:]
    view2 = view + 0                                   # (untouched)
    base_of[0] = 4.0                                   # a direct write still
    (h * h).sum().backward()
    assert direct_write.STATS["refused"] - before["refused"] == 2
    assert direct_write.STATS["written"] - before["written"] == 1
    assert h.grad_fn.name() == "CopySlices"
    assert w.grad.tolist() == [18.0, 0.0, 54.0]        # d/dw of (3w)^2 with h[1] cut
    assert view.tolist() == [0.0, 4.0, 0.0] and view2.tolist() == [0.0, 0.0, 0.0]


def test_write_into_a_view_of_a_tensor_with_history_is_recorded():
    w = gj.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=gj.float64, requires_grad=True)
    h = w * 1.0
    row = h[0]                                         # a view with history (SelectBackward0)
    before = direct_write.STATS["refused"]
    row[1] = 10.0
    assert direct_write.STATS["refused"] - before == 1
    h.sum().backward()
    assert w.grad.tolist() == [[1.0, 0.0], [1.0, 1.0]]


def _finite_difference(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = eps
        g.flat[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def test_gradient_through_a_directly_written_input_matches_finite_differences():
    def loss_np(w):
        m = np.zeros((3, 4))
        m[1, 2], m[0, 0], m[2, 1:3] = 1.0, -2.0, 0.5
        return float(np.sum(np.tanh(m @ w) ** 2))
    w0 = np.linspace(-1, 1, 8).reshape(4, 2)
    w = gj.tensor(w0, requires_grad=True)
    m = gj.zeros(3, 4, dtype=gj.float64)
    m[1][2] = 1
    m[0, 0] = -2.0
    m[2][1:3] = 0.5
    (gj.tanh(m @ w) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), _finite_difference(loss_np, w0), rtol=1e-7,
                               atol=1e-9)


@pytest.mark.parametrize("dtype,value,taken", [
    ("f64", 0.1, True),           # both paths keep the double (operands.written_as)
    ("f64", 0.5, True), ("f32", 0.1, True), ("f32", 1e39, False), ("i64", 2.5, False),
    ("i64", 2 ** 40, True), ("bool", 3, True), ("f32", 2 ** 60, False)])
def test_conversions_taken_only_where_numpy_converts_alike(dtype, value, taken, general):
    results = []
    for on in (True, False):
        direct_write.ENABLED = on
        x = gj.zeros(2, dtype=_DTYPES[dtype][0])
        before = direct_write.STATS["written"]
        x[0] = value
        results.append(x.numpy().tobytes())
        if on:
            assert (direct_write.STATS["written"] - before == 1) == taken
    assert results[0] == results[1]


@pytest.mark.parametrize("key", [5, -4, (0, 0), slice(None, None, -1), slice(0, 2, 0),
                                 (Ellipsis, Ellipsis), True, 2 ** 70, (0, slice(0, 2 ** 80))])
def test_refused_keys_behave_as_the_general_path(key, general):
    """Errors (or, for a key the direct path leaves alone, whatever the general path does)
    are the same with the direct path on and off."""
    outcomes = []
    for on in (True, False):
        direct_write.ENABLED = on
        x = gj.zeros(3)
        try:
            x[key] = 1.0
            outcomes.append((x.tolist(), x._version))
        except Exception as e:     # noqa: BLE001  (the class and text are compared)
            outcomes.append((type(e), str(e), x._version))
    assert outcomes[0] == outcomes[1]


def test_numpy_shared_memory_and_expand_take_the_general_path():
    a = gj.zeros(3)
    n = a.numpy()
    before = direct_write.STATS["refused"]
    a[0] = 1.0
    assert n.tolist() == [1.0, 0.0, 0.0]
    h = gj.zeros(1, 3)
    e = h.expand(2, 3)
    h[0, 1] = 2.0
    assert e.tolist() == [[0.0, 2.0, 0.0]] * 2
    assert direct_write.STATS["refused"] - before == 2


def test_log_names_the_refusal(monkeypatch, caplog):
    monkeypatch.setattr(direct_write, "logging_enabled", lambda: True)
    w = gj.zeros(2, requires_grad=True)
    with caplog.at_level("INFO", logger="gradjit"), gj.no_grad():
        w[0] = 1.0
    assert w.tolist() == [1.0, 0.0]
    assert any("direct write refused" in r.getMessage() and "requires grad" in r.getMessage()
               for r in caplog.records)


def test_a_loop_of_direct_writes_is_followed_from_a_tape(general):
    """The written tensor is a data leaf to step capture: the loop's other ops form a tape
    (the general path's scatters broke it), with the same numbers as the general path."""
    w = gj.tensor(np.linspace(-1, 1, 16, dtype=np.float32))
    out = {}
    for on in (False, True):
        direct_write.ENABLED = on
        tapes = step_capture.STATS["tapes"]
        got = []
        for i in range(12):
            x = gj.zeros(16)
            x[i % 16] = 1.0
            x[2:5] = -0.5
            got.append((w * x + 1).sum().item())
        out[on] = got
        if on:
            assert step_capture.STATS["tapes"] > tapes
    assert out[True] == out[False]
