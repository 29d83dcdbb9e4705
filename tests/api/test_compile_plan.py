"""compile(model)'s cached forward (tracer/compile.py's _ForwardPlan, tracer/fn_replay.py):
later training calls record the traced forward without walking the module tree or looking
up the signature, with the same graph as the general path: bitwise the same losses,
gradients, parameters and statistics; a change of the module tree, of mode or of shapes
falls back to the general path, correctly."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tests.gradcheck import numeric_grad
from ir import Function
from tracer import compile as compile_mod, fn_replay
from tracer.autograd import follow, node_walk, replay
from tracer.expr import Expr, apply_function, param_expr
from tracer.fn_replay import FunctionReplay
from tracer.pending_expr import PendingExpr
from tracer.staging import to_expr


class Block(gj.nn.Module):
    """A little of everything the plan must carry: a causal mask buffer (never written),
    BatchNorm (statistics written back), attention-like softmax, two outputs."""

    def __init__(self, d: int = 6):
        super().__init__()
        self.inp = gj.nn.Linear(d, d)
        self.norm = gj.nn.BatchNorm1d(d)
        self.out = gj.nn.Linear(d, 3)
        self.register_buffer("mask", gj.tensor(np.tril(np.ones((d, d), np.float32))))

    def forward(self, x):
        h = self.norm(self.inp(x)).relu()
        att = (h @ self.mask).softmax(dim=-1)
        return self.out(att * h), h.sum()


def _train(model, run, x, y, steps: int, opt_cls=gj.optim.Adam):
    opt = opt_cls(model.parameters(), lr=0.05)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        pred, extra = run(x)
        loss = ((pred - y) ** 2).mean() + 1e-3 * extra
        loss.backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        opt.step()
        out.append((loss.item(), grads))
    return out, [t.detach().numpy().copy() for t in model.state_dict().values()]


def _loop(plan: bool, monkeypatch, steps=5, dtype=gj.float32, seed=1):
    with monkeypatch.context() as m:
        if not plan:
            m.setattr(compile_mod._ForwardPlan, "build", classmethod(lambda *a: None))
        gj.manual_seed(seed)
        model = Block().to(dtype)
        x = gj.randn(10, 6, dtype=dtype)
        y = gj.randn(10, 3, dtype=dtype)
        return _train(model, gj.compile(model), x, y, steps)


def _assert_same(a, b):
    (steps_a, state_a), (steps_b, state_b) = a, b
    for (la, ga), (lb, gb) in zip(steps_a, steps_b):
        assert la == lb
        for u, v in zip(ga, gb):
            np.testing.assert_array_equal(u, v)
    for u, v in zip(state_a, state_b):
        np.testing.assert_array_equal(u, v)


def test_plan_steps_bitwise_equal_the_general_path(monkeypatch):
    """Losses, gradients, parameters and BatchNorm statistics of 5 steps, with and without
    the plan; steps 3-5 go through the plan (step 1 traces, step 2 builds it)."""
    calls = compile_mod.STATS["plan_calls"]
    with_plan = _loop(True, monkeypatch)
    assert compile_mod.STATS["plan_calls"] - calls == 3
    calls = compile_mod.STATS["plan_calls"]
    without = _loop(False, monkeypatch)
    assert compile_mod.STATS["plan_calls"] == calls
    _assert_same(with_plan, without)
    assert with_plan[0][0][1][0].any()                   # gradients are not all zero


def test_plan_matches_eager_module():
    """(SGD: the bias before BatchNorm has a zero gradient up to rounding, which Adam would
    scale up to full steps in different directions.)"""
    gj.manual_seed(2)
    model = Block()
    x, y = gj.randn(10, 6), gj.randn(10, 3)
    compiled_run = _train(model, gj.compile(model), x, y, 4, gj.optim.SGD)
    gj.manual_seed(2)
    model = Block()
    eager_run = _train(model, model, x, y, 4, gj.optim.SGD)
    for (la, ga), (lb, gb) in zip(compiled_run[0], eager_run[0]):
        np.testing.assert_allclose(la, lb, rtol=1e-5)
        for u, v in zip(ga, gb):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)
    for u, v in zip(compiled_run[1], eager_run[1]):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)


def test_plan_gradient_matches_finite_differences_float64():
    gj.manual_seed(4)
    model = gj.nn.Sequential(gj.nn.Linear(3, 5), gj.nn.Tanh(), gj.nn.Linear(5, 1)).double()
    compiled = gj.compile(model)
    x = gj.randn(7, 3, dtype=gj.float64)
    calls = compile_mod.STATS["plan_calls"]
    for _ in range(3):                       # the third call goes through the plan
        model.zero_grad()
        compiled(x).pow(2).sum().backward()
    assert compile_mod.STATS["plan_calls"] - calls == 1
    w = model[0].weight
    analytic = w.grad.numpy().copy()
    base = w.detach().numpy().copy()

    def loss(shifted):
        with gj.no_grad():
            w.copy_(gj.tensor(shifted))
            return model(x).pow(2).sum().item()
    np.testing.assert_allclose(analytic, numeric_grad(loss, base), rtol=1e-6, atol=1e-8)


def _step(run, x):
    pred, extra = run(x)
    loss = pred.pow(2).mean() + extra
    loss.backward()
    return loss.item()


def test_changes_fall_back_and_stay_correct():
    """train/eval, a new input shape, a replaced parameter, requires_grad off: each call
    computes what the eager module does (the plan is not used where it does not apply)."""
    gj.manual_seed(5)
    model = Block()
    compiled = gj.compile(model)
    x = gj.randn(10, 6)
    for _ in range(3):
        _step(compiled, x)

    def check(inp):
        model.zero_grad()
        got = _step(compiled, inp)
        g = model.inp.weight.grad.numpy().copy()
        stats = model.norm.running_mean.numpy().copy()
        model.zero_grad()
        with gj.no_grad():      # undo the eager forward's statistics update below
            model.norm.running_mean.copy_(gj.tensor(model.norm.running_mean.numpy()))
        want = _step(model, inp)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        np.testing.assert_allclose(g, model.inp.weight.grad.numpy(), rtol=1e-4, atol=1e-6)
        return stats

    check(gj.randn(7, 6))                               # a new batch size
    compiled.eval()
    assert not model.norm.training
    before = model.norm.running_mean.numpy().copy()
    check(x)
    np.testing.assert_array_equal(model.norm.running_mean.numpy(), before)   # eval: no update
    compiled.train()
    model.inp.weight = gj.nn.Parameter(gj.randn(6, 6))  # a replaced parameter is used
    check(x)
    assert model.inp.weight.grad is not None
    model.training = False                              # a plain attribute, set directly
    model.norm.training = False
    before = model.norm.running_mean.numpy().copy()
    check(x)
    np.testing.assert_array_equal(model.norm.running_mean.numpy(), before)
    model.train()
    model.requires_grad_(False)
    out, _ = compiled(x)
    assert out.grad_fn is None
    model.requires_grad_(True)
    check(x)


def test_running_statistics_updated_once_per_plan_call():
    gj.manual_seed(6)
    model = gj.nn.Sequential(gj.nn.Linear(3, 4), gj.nn.BatchNorm1d(4))
    compiled = gj.compile(model)
    xs = [gj.randn(8, 3) for _ in range(4)]
    calls = compile_mod.STATS["plan_calls"]
    for x in xs:
        compiled(x).sum().backward()
    assert compile_mod.STATS["plan_calls"] - calls == 2
    gj.manual_seed(6)
    eager = gj.nn.Sequential(gj.nn.Linear(3, 4), gj.nn.BatchNorm1d(4))
    for x in xs:
        eager(x).sum().backward()
    np.testing.assert_allclose(model[1].running_mean.numpy(), eager[1].running_mean.numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(model[1].running_var.numpy(), eager[1].running_var.numpy(),
                               rtol=1e-6)
    assert int(model[1].num_batches_tracked.item()) == 4


def _describe(exprs, params):
    """The graph behind exprs: per op (prim, params, frozen, result types, loc, operand
    positions); positions count params first, then ops' results in creation order."""
    index = {id(p): i for i, p in enumerate(params)}
    ops, seen = [], set()

    def visit(e):
        if id(e) in index or e.op is None:
            return
        for a in e.args:
            visit(a)
        if id(e.op) in seen:
            return
        seen.add(id(e.op))
        ops.append((e.op.prim.name, sorted(e.op.params.items(), key=str), e.op.frozen,
                    [r.type for r in e.op.results], e.op.loc, [index[id(a)] for a in e.args],
                    len(getattr(e.op, "exprs", ()))))
        for r in e.op.results:
            sib = [x for x in ([e] if len(e.op.results) == 1 else
                               [w() for w in e.op.exprs]) if x is not None and x.value is r]
            for x in sib:
                index[id(x)] = len(index)
    for e in exprs:
        visit(e)
    return ops


def _programs():
    def sorting(x, w):
        v, i = gj.sort(x * w.sum(0), dim=0)
        return v.tanh() @ w.t(), i

    def branchy(x, w):
        y = gj.cond(x.sum() > 0, lambda a: a * 2.0, lambda a: a - 1.0, x @ w)
        return y.softmax(dim=-1), y.max()
    return [sorting, branchy]


@settings(max_examples=12, deadline=None)
@given(which=st.sampled_from([0, 1]), n=st.integers(1, 5), m=st.integers(1, 4))
def test_function_replay_records_what_apply_function_records(which, n, m):
    fun = _programs()[which]
    x, w = gj.randn(n, m), gj.randn(m, m)
    fn = gj.jit(fun).trace_ir(x, w)
    args = [to_expr(x), to_expr(w)]
    want = apply_function(fn, args)
    replay = FunctionReplay(fn)
    got = replay(args)
    assert _describe(got, args) == _describe(want, args)
    assert [g.type for g in got] == [e.type for e in want]
    # straight-line code for a Function without regions (sort: two results), else the loop
    assert callable(replay.straight) if which == 0 else replay.straight is None
    # symbolic arguments (inside a trace): the loop, with symbolic results
    symbolic = [param_expr(a.type) for a in args]
    got = replay(symbolic)
    assert _describe(got, symbolic) == _describe(apply_function(fn, symbolic), symbolic)
    assert all(g.symbolic for g in got)
    with pytest.raises(ValueError, match="expected 2 arguments"):
        FunctionReplay(fn)(args[:1])


def test_no_grad_calls_run_the_program_from_a_plan(monkeypatch):
    """Under no_grad a call runs the compiled program on the realised arrays from a plan:
    the same bits as the general path, BatchNorm's statistics updated in training mode and
    not in eval mode, pending inputs (and statistics) realised first."""
    def run(plan: bool):
        with monkeypatch.context() as m:
            if not plan:
                m.setattr(compile_mod._ForwardPlan, "build", classmethod(lambda *a: None))
            gj.manual_seed(8)
            model = Block()
            compiled = gj.compile(model)
            xs = [gj.randn(10, 6) for _ in range(3)]
            calls = compile_mod.STATS["plan_calls"]
            outs = []
            with gj.no_grad():
                for x in xs + [xs[0] * 2.0]:           # the last input is pending
                    outs.append([t.numpy().copy() for t in compiled(x)])
                stats = model.norm.running_mean.numpy().copy()
                compiled.eval()
                for x in xs:
                    outs.append([t.numpy().copy() for t in compiled(x)])
            np.testing.assert_array_equal(model.norm.running_mean.numpy(), stats)
            return outs, stats, compile_mod.STATS["plan_calls"] - calls
    (got, stats, calls), (want, stats0, calls0) = run(True), run(False)
    # per mode: the first call traces, the second builds the plan: train calls 3-4, eval 3
    assert calls == 3 and calls0 == 0
    for a, b in zip(got, want):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(stats, stats0)
    assert not np.allclose(stats, 0)
    gj.manual_seed(8)
    eager = Block()
    with gj.no_grad():
        xs = [gj.randn(10, 6) for _ in range(3)]
        for x in xs + [xs[0] * 2.0]:
            eager(x)
    np.testing.assert_allclose(stats, eager.norm.running_mean.numpy(), rtol=1e-5, atol=1e-7)


def test_an_input_that_requires_grad_under_a_frozen_model_still_gets_its_gradient():
    gj.manual_seed(9)
    model = gj.nn.Sequential(gj.nn.Linear(3, 4), gj.nn.Tanh(), gj.nn.Linear(4, 1))
    model.requires_grad_(False)
    compiled = gj.compile(model)
    grads = []
    for _ in range(3):
        x = gj.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
                      requires_grad=True)
        compiled(x).sum().backward()
        grads.append(x.grad.numpy().copy())
    x = gj.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    model(x).sum().backward()
    for g in grads:
        np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-6)


class Causal(gj.nn.Module):
    """Block without BatchNorm: every output of the compiled forward is a float node output
    (an integer output, num_batches_tracked, keeps the node walked value by value)."""

    def __init__(self, d: int = 6):
        super().__init__()
        self.inp = gj.nn.Linear(d, d)
        self.out = gj.nn.Linear(d, 3)
        self.register_buffer("mask", gj.tensor(np.tril(np.ones((d, d), np.float32))))

    def forward(self, x):
        h = self.inp(x).tanh()
        att = (h @ self.mask).softmax(dim=-1)
        return self.out(att * h), h.sum()


def _keyed_loop(mode: str, events: list) -> list:
    """compile(Causal) steps, one per event, with the backward key stopping at the compiled
    forward's outputs ("stop"), walking them value by value ("walk"), or no replay ("emit")."""
    replay.clear()
    with pytest.MonkeyPatch.context() as patch:
        if mode != "stop":
            patch.setattr(node_walk, "add_stops", lambda *args: False)
        if mode == "emit":
            patch.setattr(replay, "lookup", lambda walk: None)
        gj.manual_seed(9)
        model = Causal()
        run = gj.compile(model)
        xs = {n: gj.randn(n, 6) for n in (10, 7)}
        opt = gj.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        out = []
        for ev in events:
            opt.zero_grad()
            pred, extra = run(xs[7 if ev == "batch" else 10])
            if ev == "read_out":
                pred.sum().item()                    # the node's output holds data
            if ev == "inplace_out":
                pred.mul_(2.0)                       # a new node over the output
            loss = pred.pow(2).mean() + 1e-3 * extra
            if ev == "retain":
                loss.backward(retain_graph=True)
            loss.backward()
            grads = [p.grad.numpy().copy() for p in model.parameters()]
            opt.step()
            out.append((loss.item(), grads, [t.detach().numpy().copy()
                                             for t in model.state_dict().values()]))
        return out


def test_backward_key_stops_at_the_compiled_forward():
    """The compiled forward's node is keyed by its Function at its outputs (node_walk): its
    interior is not walked; every step bitwise equal with the whole walk and with no replay,
    also when the output is read, changed in place, or differentiated twice."""
    events = ["plain"] * 4 + ["read_out", "plain", "inplace_out", "plain", "batch", "batch",
                              "plain", "retain", "plain", "plain"]
    stopped = []
    add_stops = node_walk.add_stops

    def spy(stops, node, pos, tm, reads):
        done = add_stops(stops, node, pos, tm, reads)
        if isinstance(tm[0], Function):
            stopped.append(done)
        return done
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(node_walk, "add_stops", spy)
        patch.setattr(follow, "ENABLED", False)   # every backward keyed (follow.py skips it)
        stop = _keyed_loop("stop", events)
    # plan calls from the third step on (the batch-7 calls: from the second of them), and
    # not the in-place step (the new Mul node's input is the output: still a stop)
    assert stopped.count(True) >= 10
    for other in ("walk", "emit"):
        for a, b in zip(stop, _keyed_loop(other, events)):
            assert a[0] == b[0]
            for u, v in zip(a[1] + a[2], b[1] + b[2]):
                np.testing.assert_array_equal(u, v)


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 5), m=st.integers(1, 4), read=st.sampled_from([0, 1]))
def test_pending_forward_builds_what_the_replay_records(n, m, read):
    """FunctionReplay.pending: results with real types and no Ops until one is read; then
    the graph (both results, siblings of one sort op included) is the replay's, and the
    other result, still pending, is adopted by the same build."""
    fun = _programs()[0]
    x, w = gj.randn(n, m), gj.randn(m, m)
    fn = gj.jit(fun).trace_ir(x, w)
    args = [to_expr(x), to_expr(w)]
    replay = FunctionReplay(fn)
    want = replay(args)
    before = dict(fn_replay.STATS)
    got = replay.pending(args)
    assert fn_replay.STATS["pending_calls"] == before["pending_calls"] + 1
    assert [type(g) for g in got] == [PendingExpr] * len(got)
    assert [g.type for g in got] == [e.type for e in want]
    assert fn_replay.STATS["materialised"] == before["materialised"]
    assert got[read].op is not None                      # the read builds the interior
    assert fn_replay.STATS["materialised"] == before["materialised"] + 1
    assert all(type(g) is Expr for g in got)             # both adopted by the one build
    assert _describe(got, args) == _describe(want, args)
    assert fn_replay.STATS["materialised"] == before["materialised"] + 1
    assert replay.pending([param_expr(a.type) for a in args]) is None   # symbolic: no


def test_replayed_training_steps_build_no_forward_interior(monkeypatch):
    """compile(Causal) steps whose backward replays never build the forward's Ops; steps
    that must walk (hook on the output, an output read op by op) build them once; every
    step bitwise equal to the same loop with the pending forward turned off."""
    events = ["plain"] * 5 + ["hook", "plain", "plain", "retain", "plain"]

    def loop(pending: bool):
        replay.clear()
        with pytest.MonkeyPatch.context() as patch:
            if not pending:
                patch.setattr(FunctionReplay, "pending", lambda self, args: None)
            gj.manual_seed(11)
            model = Causal()
            run = gj.compile(model)
            x = gj.randn(10, 6)
            opt = gj.optim.AdamW(model.parameters(), lr=0.05)
            out, built = [], []
            for ev in events:
                opt.zero_grad()
                before = fn_replay.STATS["materialised"]
                pred, extra = run(x)
                if ev == "hook":
                    pred.register_hook(lambda g: g * 1.0)    # replay off: the walk reads it
                loss = pred.pow(2).mean() + 1e-3 * extra
                loss.backward(retain_graph=ev == "retain")
                if ev == "retain":
                    loss.backward()
                built.append(fn_replay.STATS["materialised"] - before)
                grads = [p.grad.numpy().copy() for p in model.parameters()]
                opt.step()
                out.append((loss.item(), grads, [t.detach().numpy().copy()
                                                 for t in model.state_dict().values()]))
            return out, built
    calls = fn_replay.STATS["pending_calls"]
    got, built = loop(True)
    assert fn_replay.STATS["pending_calls"] - calls == len(events) - 2   # plan from step 3
    assert built[2:5] == [0, 0, 0] and built[-1] == 0
    assert built[events.index("hook")] == 1
    want, _ = loop(False)
    for a, b in zip(got, want):
        assert a[0] == b[0]
        for u, v in zip(a[1] + a[2], b[1] + b[2]):
            np.testing.assert_array_equal(u, v)
