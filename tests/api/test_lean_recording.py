"""Two cuts of a grad-recording step's Python (session 20, gradpy).

1. A kept backward shape with pending slots (two_layer_net_autograd.py's `w -= lr * w.grad;
   w.grad.zero_()` under no_grad) gets follow._finish written out in its generated check
   (tracer/autograd/follow_code.py) around the same call of follow._pending_walk, instead
   of calling _finish. Every generated check made here also runs the loop it replaces
   (follow._check) on the same root, and the answers must be the same; loops of changed
   steps run four ways (code, loop, keyed, emitted) and are bitwise equal after every step.
2. recording.on_op / attach_node read grad mode and the template outputs inline and test an
   output sharing an input's Expr in the loop over the inputs: the node, its edges, saves,
   template and the output's Expr are what the general rules say (checked here case by
   case), and a thread's grad mode is its own.
"""
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import run_follow_mode
from tests.api.follow_check import compare_checks, mlp
from tests.api.test_follow_pending import _same, _steps
from tests.gradcheck import numeric_grad
from tracer import captures, op_memo, op_sites, record
from tracer.autograd import follow, follow_code, recording
from tracer.autograd.nodes import node_class
from tracer.tensor import Tensor


def _fresh_sites(patch):
    """Call sites noted afresh: op_sites stops noting for good a site of gradjit's own that
    changed too often (F.linear's, across the shapes of earlier tests in the process), and
    the direct path needs a noted site."""
    patch.setattr(op_sites, "_SITES", {})
    patch.setattr(op_sites, "_CHANGES", {})


@pytest.fixture(autouse=True)
def fresh_sites(monkeypatch):
    _fresh_sites(monkeypatch)


@pytest.fixture(autouse=True)
def compared(monkeypatch):
    """Each generated check runs beside follow._check; counts the answers compared and
    keeps the generated functions (to look at their code)."""
    return compare_checks(monkeypatch)


def _run(events: list, mode: str, **kw) -> tuple[list, dict]:
    """mode "code", "loop", "keyed" or "emit"; (per-step arrays, follow.STATS delta)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(follow, "CODE_ENABLED", mode == "code")
        return run_follow_mode(
            lambda: [[t.numpy().copy() for t in step] for step in _steps(events, **kw)],
            "follow" if mode in ("code", "loop") else mode)


def _four_ways(events: list, **kw) -> dict:
    out, stats = _run(events, "code", **kw)
    for mode in ("loop", "keyed", "emit"):
        other, other_stats = _run(events, mode, **kw)
        _same(out, other)
        assert other_stats["generated"] == 0
    return stats


def test_pending_shapes_check_by_code_without_calling_finish(compared):
    """The tutorial's loop: from the (CODE_AFTER + 1)th follow on, the generated check
    answers, with the pending slots walked inside it (not follow._finish), every answer
    the loop's, every step bitwise the loop's, the keyed and the emitted program's."""
    n = 12
    stats = _four_ways(["plain"] * n)
    # steps 1-2 emit (no .grad, then .grads), step 3 keys and keeps the shape
    assert stats["followed"] == n - 3
    assert stats["generated"] == n - 3 - follow_code.CODE_AFTER
    # (each generated answer counted twice: the loop runs beside it here)
    assert stats["pending"] == stats["followed"] + stats["generated"]
    assert compared["same"] == stats["generated"]
    shape, code = compared["made"][0]
    assert shape.pending_key is not None
    names = code.__code__.co_names + tuple(code.__globals__)
    assert "pending_walk" in names and "finish" not in names


# a change at step 8, once the check is generated: each is refused by the code with the
# loop's reason and keyed (or emitted), or followed again, bitwise either way
EVENTS = ["lr", "outside", "read", "read_weight", "swap", "shared",
          "hook", "detached", "no_grad_input"]


@pytest.mark.parametrize("event", EVENTS)
def test_a_changed_step_after_the_code_falls_back_bitwise(event, compared):
    stats = _four_ways(["plain"] * 7 + [event] + ["plain"] * 4)
    assert stats["generated"] >= 2
    assert compared["same"] + compared["refused"] >= stats["generated"]
    assert stats["followed"] < 7 + 1 + 4 - 2        # that step (at least) was not followed


def test_another_learning_rate_is_refused_by_the_code_with_the_loops_reason(compared):
    """lr at step 8's update: another constant in the pending update step 9's backward
    reads, so another pending key: the code refuses it as the loop does."""
    _, stats = _run(["plain"] * 7 + ["lr", "plain"], "code")
    assert stats["refused"] == 1 and compared["refused"] == 1


@pytest.mark.parametrize("grad_op", ["zero", "mul"])
def test_a_grad_scaled_in_place_is_a_pending_slot_for_the_code(grad_op, compared):
    """`w.grad.mul_(0.5)`: the old .grad a pending slot that reads data, walked inside the
    generated check (its Expr at the plan's position comes from the walk)."""
    stats = _four_ways(["plain"] * 10, grad_op=grad_op)
    assert stats["generated"] >= 1
    assert stats["pending"] == stats["followed"] + stats["generated"]


@settings(max_examples=8, deadline=None)
@given(d=st.integers(1, 6), h=st.integers(1, 6), o=st.integers(1, 4), n=st.integers(1, 5),
       dtype=st.sampled_from(["float32", "float64"]),
       grad_op=st.sampled_from(["zero", "mul"]),
       events=st.lists(st.sampled_from(["plain"] * 4 + ["lr", "read", "swap", "outside"]),
                       min_size=6, max_size=10))
def test_random_sizes_and_events_bitwise_with_code(d, h, o, n, dtype, grad_op, events):
    _four_ways(["plain"] * 5 + events, sizes=(d, h, o), n=n, dtype=dtype, grad_op=grad_op)


def test_a_code_checked_steps_gradients_against_float64_finite_differences(compared):
    """Step 9 (its check generated, with pending weights and zeroed .grads) against central
    differences of the loss at the weights it starts from (step 8's results)."""
    out, stats = _run(["plain"] * 9, "code", dtype="float64")
    assert stats["generated"] >= 2
    rng = np.random.default_rng(1)
    d, o, n = 5, 3, 6
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, o))
    w1, w2 = out[7][3], out[7][4]

    def loss(a, b):
        return float((((np.maximum(x @ a, 0) @ b) - y) ** 2).sum())
    np.testing.assert_allclose(out[8][1], numeric_grad(lambda a: loss(a, w2), w1),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(out[8][2], numeric_grad(lambda b: loss(w1, b), w2),
                               rtol=1e-6, atol=1e-8)


# ---- on_op / attach_node ----

def _leaf(shape=(3, 4), seed=0, grad=True):
    rng = np.random.default_rng(seed)
    return gj.tensor(rng.standard_normal(shape), dtype="float32", requires_grad=grad)


@pytest.mark.parametrize("x_grad,w_grad", [(True, True), (False, True), (True, False)])
def test_a_products_saves_follow_which_operand_requires_grad(x_grad, w_grad):
    """Mm saves an operand only for the other's gradient: the saved tensors and the
    unchecked flag as PyTorch's rule gives them, for each operand requiring grad."""
    x, w = _leaf((2, 3), 1, x_grad), _leaf((3, 4), 2, w_grad)
    node = x.mm(w).grad_fn
    saved = [s.storage for s in node.saved]
    assert saved == [t._storage for t, needed in ((x, w_grad), (w, x_grad)) if needed]
    assert node.saves_unchecked is not (x_grad and w_grad)


def test_a_replayed_op_keys_its_node_by_its_template():
    """The second call of an op replays its Template: its node keeps (Template, its
    output Exprs); an output rewritten after the op does not match them."""
    a, b = _leaf(), _leaf(seed=1)
    for _ in range(2):
        out = a * b
    tm = out.grad_fn.template
    assert tm is not None and tm[1] == [out._expr]
    assert type(out.grad_fn).__name__ == "MulBackward0"
    assert out.grad_fn.edges == [(a._accumulate, 0), (b._accumulate, 0)]


def _same_expr_result(x: Tensor) -> Tensor:
    return Tensor(x._expr)             # a new Tensor on an input's own Expr


def test_an_output_on_an_inputs_expr_gets_its_own():
    x = _leaf()
    out = _same_expr_result(x)
    node = recording.attach_node(node_class("ViewBackward0", recording.OpNode), [x], out)
    assert node is not None and out.grad_fn is node
    assert out._expr is not x._expr and out._expr.args == (x._expr,)
    assert node.output_exprs == [out._expr] and node.input_exprs == [x._expr]


def test_an_output_that_is_a_later_input_gets_no_node():
    """The output shares the first input's Expr and is the second input itself: no node,
    and its Expr is left alone (the identity test wins over the shared Expr)."""
    x = _leaf()
    out = _same_expr_result(x)
    before = out._expr
    node = recording.attach_node(node_class("AddBackward0", recording.OpNode), [x, out], out)
    assert node is None and out._expr is before and out.grad_fn is None


def test_grad_mode_is_read_per_thread():
    """no_grad in this thread does not stop another thread's recording, and the reverse."""
    a, b = _leaf(), _leaf(seed=1)
    got = {}

    def other():
        got["other"] = (a * b).grad_fn
        with gj.no_grad():
            got["other_no_grad"] = (a * b).grad_fn
    with gj.no_grad():
        here = (a * b).grad_fn
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert here is None and got["other_no_grad"] is None
    assert type(got["other"]).__name__ == "MulBackward0"
    assert (a * b).grad_fn is not None


# ---- record._replay_recorded: a recorded call found by its site, straight to its node ----

F = gj.nn.functional


def _graph(loss) -> list:
    """What the recorded graph says of each node, in the order a walk from loss meets
    them: class, user line, saved tensors (their shapes and versions), unchecked flag,
    whether keyed by its Template, and its edges (class and output number)."""
    out, seen, stack = [], set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        tm = node.template
        out.append((type(node).__name__, node.loc,
                    [(s.type, s.version, s.output_nr) for s in node.saved],
                    node.saves_unchecked, tm is not None and tm[1] == node.output_exprs,
                    [None if e is None else (type(e[0]).__name__, e[1])
                     for e in node.edges]))
        stack.extend(e[0] for e in node.edges if e is not None)
    return out


def _mlp_loop(steps: int, sizes=(5, 7, 3), n: int = 6, dtype: str = "float32",
              opt_name: str = "sgd") -> list:
    rng = np.random.default_rng(4)
    model = mlp(rng, sizes, dtype)
    opt = (gj.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if opt_name == "sgd"
           else gj.optim.AdamW(model.parameters(), lr=0.01))
    x = gj.tensor(rng.standard_normal((n, sizes[0])), dtype=dtype)
    y = gj.tensor(rng.integers(0, sizes[2], n))
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        graph = _graph(loss)
        loss.backward()
        opt.step()
        out.append((graph, loss.item(), [p.detach().numpy().copy() for p in model.parameters()],
                    [p.grad.detach().numpy().copy() for p in model.parameters()]))
    return out


def _both(loop) -> tuple:
    """(loop() with the direct path, the calls it took; loop() without it)."""
    before = record.RECORDED_STATS["calls"]
    on = loop()
    calls = record.RECORDED_STATS["calls"] - before
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(record, "RECORDED_ENABLED", False)
        off = loop()
    assert record.RECORDED_STATS["calls"] - before == calls
    return on, calls, off


def _assert_steps_equal(on: list, off: list):
    assert len(on) == len(off)
    for (g_on, l_on, p_on, d_on), (g_off, l_off, p_off, d_off) in zip(on, off):
        assert g_on == g_off
        assert l_on == l_off
        for a, b in zip(p_on + d_on, p_off + d_off):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def test_an_mlp_loop_records_directly_and_bitwise(compared):
    """linear, relu, linear and cross_entropy (4 recorded ops a step; the views of
    F.linear's weight and the first call at each site take the general path): the same
    graph (classes, lines, saves, Templates, edges), losses, parameters and gradients."""
    on, calls, off = _both(lambda: _mlp_loop(8))
    _assert_steps_equal(on, off)
    assert calls >= 4 * 6


def test_the_tutorial_loop_records_directly_and_bitwise(compared):
    """two_layer_net_autograd.py's loop: its 6 recorded ops a step after the first."""
    before = record.RECORDED_STATS["calls"]
    on, _ = _run(["plain"] * 8, "code")
    assert record.RECORDED_STATS["calls"] - before >= 6 * 6
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(record, "RECORDED_ENABLED", False)
        off, _ = _run(["plain"] * 8, "code")
    _same(on, off)


def _products(x, w, b):
    return (x.mm(w) * b).sum()


def test_another_hook_takes_the_general_path_and_sees_every_op():
    """A second op hook (a profiler's, say): no direct call, the hook sees each op."""
    x, w, b = _leaf((2, 3), 1, False), _leaf((3, 4), 2), _leaf((2, 4), 3)
    for _ in range(4):                  # (sites noted by the second call: direct)
        before = record.RECORDED_STATS["calls"]
        _products(x, w, b)
    assert record.RECORDED_STATS["calls"] == before + 3
    seen = []

    def observer(name, saves, args, kwargs, result):
        seen.append(name)
        return result
    before = record.RECORDED_STATS["calls"]
    record.op_hooks.append(observer)
    try:
        loss = _products(x, w, b)
    finally:
        record.op_hooks.remove(observer)
    assert record.RECORDED_STATS["calls"] == before
    assert seen == ["Mm", "Mul", "Sum"]
    assert loss.grad_fn.template is not None
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), x.numpy().T @ b.detach().numpy(), rtol=1e-6)


def _three_contexts(x, w, b) -> list:
    with captures.reading():
        traced = _products(x, w, b)
    plain = _products(x.detach(), w.detach(), b.detach())
    with gj.no_grad():
        quiet = _products(x, w, b)
    return [traced, plain, quiet]


def test_a_functional_trace_no_grad_and_no_grad_operand_take_their_paths():
    """Inside a trace (captures noted) and without an operand requiring grad the direct
    path does nothing; under no_grad it may replay and makes no node. Values bitwise the
    general path's, and close to NumPy's."""
    x, w, b = _leaf((2, 3), 1, False), _leaf((3, 4), 2), _leaf((2, 4), 3)
    for _ in range(3):
        _products(x, w, b)
    before = record.RECORDED_STATS["calls"]
    on = _three_contexts(x, w, b)
    assert record.RECORDED_STATS["calls"] - before <= 3      # (the no_grad calls only)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(record, "RECORDED_ENABLED", False)
        off = _three_contexts(x, w, b)
    assert [t.grad_fn is not None for t in on] == [True, False, False]
    assert [t.grad_fn is not None for t in off] == [True, False, False]
    want = ((x.detach().numpy() @ w.detach().numpy()) * b.detach().numpy()).sum()
    for a, c in zip(on, off):
        np.testing.assert_array_equal(a.detach().numpy(), c.detach().numpy())
        np.testing.assert_allclose(a.detach().numpy(), want, rtol=1e-5)


def _cross_entropy(x, y):
    try:
        return F.cross_entropy(x, y), None
    except IndexError as error:
        return None, error


def test_a_guard_raises_at_the_users_line_and_the_next_call_records(monkeypatch):
    """cross_entropy's label check runs before the direct replay: the same IndexError
    naming the user's line, the wrapper's state reset, and the next call records."""
    guard = op_memo.GUARDS["NllLoss"]
    callers = []

    def watched(args, kwargs):
        callers.append(sys._getframe(1).f_code.co_name)
        return guard(args, kwargs)
    monkeypatch.setitem(op_memo.GUARDS, "NllLoss", watched)
    x = _leaf((4, 3), 1)
    good, bad = gj.tensor(np.array([0, 1, 2, 1])), gj.tensor(np.array([0, 1, 5, 1]))
    calls, outs = [], []
    for y in [good] * 4 + [bad, good]:
        before = record.RECORDED_STATS["calls"]
        outs.append(_cross_entropy(x, y))
        calls.append(record.RECORDED_STATS["calls"] - before)
        assert record._state.depth == 0 and record._state.loc is None
    assert calls[3:] == [1, 0, 1] and callers[-3:] == ["_replay_recorded"] * 3
    loss, error = outs[4]
    assert loss is None and "test_lean_recording.py" in str(error) + "".join(
        getattr(error, "__notes__", []))
    assert type(outs[5][0].grad_fn).__name__ == "NllLossBackward0"


@settings(max_examples=8, deadline=None)
@given(d=st.integers(1, 6), h=st.integers(1, 6), o=st.integers(2, 4), n=st.integers(1, 5),
       dtype=st.sampled_from(["float32", "float64"]),
       opt_name=st.sampled_from(["sgd", "adamw"]))
def test_random_mlps_record_directly_and_bitwise(d, h, o, n, dtype, opt_name):
    with pytest.MonkeyPatch.context() as patch:
        _fresh_sites(patch)
        on, calls, off = _both(lambda: _mlp_loop(5, (d, h, o), n, dtype, opt_name))
    _assert_steps_equal(on, off)
    assert calls >= 4 * 3


def test_a_directly_recorded_steps_gradients_against_float64_finite_differences():
    """An MLP step recorded directly (float64): its gradients against central
    differences of the same loss in NumPy."""
    sizes, n = (4, 5, 3), 6
    before = record.RECORDED_STATS["calls"]
    out = _mlp_loop(4, sizes, n, "float64")
    assert record.RECORDED_STATS["calls"] > before
    rng = np.random.default_rng(4)
    mlp(rng, sizes, "float64")                 # (draws the initial values: same rng)
    x = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[2], n)
    # the parameters step 4 starts from: step 3's results
    w1, b1, w2, b2 = out[2][2]

    def loss(w1, b1, w2, b2):
        z = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
        z = z - z.max(1, keepdims=True)
        return float(-(z[np.arange(n), y] - np.log(np.exp(z).sum(1))).mean())
    params = [w1, b1, w2, b2]
    for k, got in enumerate(out[3][3]):
        def f(v, k=k):
            return loss(*[v if j == k else p for j, p in enumerate(params)])
        np.testing.assert_allclose(got, numeric_grad(f, params[k]), rtol=1e-5, atol=1e-8)
