"""A followed optimizer plan's in-place outputs as generated code, and state tensors that keep
their Expr (tracer/optim/plan_code.py: make_outputs, make_store).

Every loop runs three ways from the same start: as built (generated outputs, kept Exprs), with
both switched off (in_place.outputs' loop, a new Expr per output), and with nothing written in
place; parameters, state and state versions must be bitwise equal after every step. Counters
and Expr identities show which path ran, and each refusal is checked to keep what the user
can see."""

import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tracer.optim import fast_step, in_place, plan_code

SHAPES = [(3, 4), (4,), (2, 3, 2), ()]

MAKERS = {
    "SGD momentum": lambda ps: gj.optim.SGD(ps, lr=0.05, momentum=0.9),
    "SGD nesterov wd": lambda ps: gj.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True,
                                               weight_decay=0.01),
    "SGD dampening": lambda ps: gj.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.3),
    "Adam": lambda ps: gj.optim.Adam(ps, lr=0.02),
    "AdamW": lambda ps: gj.optim.AdamW(ps, lr=0.01, weight_decay=0.05),
    "Adam amsgrad wd": lambda ps: gj.optim.Adam(ps, lr=0.02, amsgrad=True, weight_decay=0.1),
    "RMSprop": lambda ps: gj.optim.RMSprop(ps, lr=0.01, momentum=0.5),
    "groups": lambda ps: gj.optim.SGD([{"params": ps[:2], "momentum": 0.9},
                                       {"params": ps[2:], "lr": 0.02, "momentum": 0.5}],
                                      lr=0.05),
}
PLANNED = ["SGD momentum", "SGD nesterov wd", "SGD dampening", "Adam", "AdamW",
           "Adam amsgrad wd", "groups"]


@pytest.fixture(autouse=True)
def _code_early(monkeypatch):
    """Generated code from the third followed step (the default waits longer)."""
    monkeypatch.setattr(fast_step, "CODE_AFTER", 2)


def _params(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [gj.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
            for s in shapes]


def _loss(params, step):
    total = 0.0
    for i, p in enumerate(params):
        total = total + ((p - 0.1 * (i + step)) ** 4).sum() + (p * float(i + 1)).sum()
    return total


def _value(t) -> np.ndarray:
    """t's value read from its data Expr (.numpy() or .detach() would hold its array or
    storage, and rightly stop the in-place write after it)."""
    data = t._expr.data
    return data if data is not None else t.clone().numpy()


def _state_tensors(params, opt) -> list:
    return [v for p in params for _, v in sorted(opt.state[p].items())
            if isinstance(v, gj.Tensor)]


def _snapshot(params, opt) -> list:
    out = [_value(p).tobytes() for p in params]
    for p in params:
        for k, v in sorted(opt.state[p].items()):
            out.append(k)
            if isinstance(v, gj.Tensor):
                out += [_value(v).tobytes(), v._version]
            else:
                out.append(repr(v))
    return out


def _run(make, shapes, steps, mode, event=None):
    """Snapshots after each step; in_place's counters and how many state tensors kept their
    Expr from one step to the next. mode: "code" (as built), "loop" (the generated outputs
    and kept Exprs off) or "fresh" (nothing written in place)."""
    in_place.ENABLED = mode != "fresh"
    fast_step.OUTPUTS_CODE = plan_code.REUSE_ENABLED = mode == "code"
    before = dict(in_place.STATS)
    kept = 0
    try:
        params = _params(shapes)
        opt = make(params)
        snaps = []
        for step in range(steps):
            opt.zero_grad()
            _loss(params, step).backward()
            # ids, not the Exprs: holding one would stop its tensor being written in place.
            # (A new Expr is made while the old one is alive: an equal id is the same Expr)
            ids = {id(t): id(t._expr) for t in _state_tensors(params, opt)}
            opt.step()
            kept += sum(ids.get(id(t)) == id(t._expr) for t in _state_tensors(params, opt))
            if event is not None:
                event(step, params, opt)
            snaps.append(_snapshot(params, opt))
    finally:
        in_place.ENABLED = fast_step.OUTPUTS_CODE = plan_code.REUSE_ENABLED = True
    counts = {k: in_place.STATS[k] - before[k] for k in before}
    counts["kept"] = kept
    return snaps, counts


def _same_three_ways(make, shapes=SHAPES, steps=10, event=None) -> dict:
    code, counts = _run(make, shapes, steps, "code", event)
    loop, loop_counts = _run(make, shapes, steps, "loop", event)
    fresh, fresh_counts = _run(make, shapes, steps, "fresh", event)
    assert loop_counts["kept"] == 0 and fresh_counts["kept"] == 0
    assert fresh_counts["in_place"] == 0
    assert loop_counts["in_place"] == counts["in_place"]
    for step, (a, b, c) in enumerate(zip(code, loop, fresh)):
        assert a == b, f"step {step}: generated outputs differ from the loop's"
        assert a == c, f"step {step}: differs from fresh outputs"
    return counts


@pytest.mark.parametrize("name", PLANNED)
def test_generated_outputs_and_kept_exprs_same_bits(name):
    counts = _same_three_ways(MAKERS[name])
    assert counts["in_place"] > 0
    # every state tensor written in place kept its Expr
    assert counts["kept"] == counts["in_place"]


def test_rmsprop_keeps_no_plan_and_no_expr():
    counts = _same_three_ways(MAKERS["RMSprop"])
    assert counts["in_place"] == 0 and counts["kept"] == 0


@settings(max_examples=12, deadline=None)
@given(st.lists(st.sampled_from([(5,), (3, 7), (1,), (), (2, 1, 3), (64, 33)]), min_size=1,
                max_size=4),
       st.sampled_from(PLANNED))
def test_shapes(shapes, name):
    if name == "groups" and len(shapes) < 3:
        shapes = shapes + [(2,)] * (3 - len(shapes))
    counts = _same_three_ways(MAKERS[name], shapes, steps=7)
    assert counts["kept"] == counts["in_place"] > 0


def _buffer(opt, p):
    return opt.state[p]["momentum_buffer"]


def test_numpy_view_of_buffer_keeps_old_values():
    held = {}

    def take(step, params, opt):
        if step == 6:
            held["view"] = _buffer(opt, params[0]).numpy()
            held["bytes"] = held["view"].tobytes()
        if step == 7:
            assert held["view"].tobytes() == held["bytes"]
    counts = _same_three_ways(MAKERS["SGD momentum"], event=take)
    assert counts["fresh"] > 0 and counts["kept"] == counts["in_place"]


def test_pending_expression_of_buffer_keeps_old_value():
    held = {}

    def take(step, params, opt):
        if step == 6:
            buf = _buffer(opt, params[1])
            held["expect"] = _value(buf) * 2 + 1
            held["pending"] = buf * 2 + 1
        if step == 7:
            assert held["pending"].numpy().tobytes() == held["expect"].tobytes()
    _same_three_ways(MAKERS["SGD momentum"], event=take)


def test_detached_alias_sees_new_values_and_versions():
    """A detached tensor shares the buffer's storage (and its version counter): the buffer
    is then written fresh and assigned through its storage, as before."""
    held = {}

    def take(step, params, opt):
        buf = _buffer(opt, params[0])
        if step == 5:
            held["detached"], held["version"] = buf.detach(), buf._version
        if step > 5:
            assert held["detached"].numpy().tobytes() == _value(buf).tobytes()
            assert held["detached"]._version == buf._version == held["version"] + step - 5
    _same_three_ways(MAKERS["SGD momentum"], event=take)


def test_weakly_referenced_state_expr_is_replaced():
    """Something holding a weak reference to a state tensor's Expr (a cache keyed by it)
    may rely on its value not changing: the tensor gets a new Expr, not the old one."""
    held = {}

    def take(step, params, opt):
        buf = _buffer(opt, params[0])
        if step == 5:
            held["ref"], held["id"] = weakref.ref(buf._expr), id(buf._expr)
        if step == 6:
            assert id(buf._expr) != held["id"]
    _same_three_ways(MAKERS["SGD momentum"], event=take)


def test_user_held_state_tensor_is_the_same_object():
    held = {}

    def take(step, params, opt):
        if step == 4:
            held["tensor"] = _buffer(opt, params[0])
        if step > 4:
            assert held["tensor"] is _buffer(opt, params[0])
    counts = _same_three_ways(MAKERS["SGD momentum"], event=take)
    assert counts["kept"] > 0


def test_version_bumped_every_step():
    params = _params([(3,), (2, 2)])
    opt = MAKERS["Adam"](params)
    for step in range(8):
        opt.zero_grad()
        _loss(params, step).backward()
        versions = [t._version for t in _state_tensors(params, opt)]
        opt.step()
        if versions:
            assert [t._version for t in _state_tensors(params, opt)] == \
                [v + 1 for v in versions]
    assert fast_step.STATS["generated"] > 0


def _planned_sgd(shapes, steps=6):
    params = _params(shapes)
    opt = MAKERS["SGD momentum"](params)
    for step in range(steps):
        opt.zero_grad()
        _loss(params, step).backward()
        opt.step()
    opt.zero_grad()
    _loss(params, steps).backward()
    return params, opt, opt._fast_plans[id(opt.param_groups[0])]


def test_generated_outputs_refuse_an_array_input_twice():
    """Two inputs sharing one array: the count sees the list's second reference and both
    state outputs are fresh arrays."""
    params, opt, plan = _planned_sgd([(4,), (4,)])
    assert plan.outputs is not None
    arrays = plan.gather(opt.state)
    (o0, i0), (o1, i1) = plan.in_place
    assert [o0, o1] == [1, 3]
    outs = plan.outputs(arrays)
    assert outs[o0] is arrays[i0] and outs[o1] is arrays[i1]
    # (a copy of the list is a second reference to every array: refused too)
    copied = list(arrays)
    del outs
    outs = plan.outputs(copied)
    assert outs[o0] is not arrays[i0] and outs[o1] is not arrays[i1]
    del outs, copied
    arrays[i1] = arrays[i0]
    outs = plan.outputs(arrays)
    assert outs[o0] is not arrays[i0] and outs[o1] is not arrays[i0]
    assert all(o.flags.c_contiguous and o.flags.owndata for o in outs)


def test_generated_outputs_refuse_read_only_and_borrowed_arrays():
    """Each refused on its flag alone (no other reference is held: the count passes)."""
    params, opt, plan = _planned_sgd([(4,), (3, 2)])
    (o0, _), _ = plan.in_place
    buf = _buffer(opt, params[0])
    assert plan.outputs(plan.gather(opt.state))[o0] is buf._expr.data
    buf._expr.data.flags.writeable = False
    try:
        assert plan.outputs(plan.gather(opt.state))[o0] is not buf._expr.data
    finally:
        buf._expr.data.flags.writeable = True
    assert plan.outputs(plan.gather(opt.state))[o0] is buf._expr.data
    base = np.zeros(8, np.float32)
    buf._expr.data = base[:4]             # (a view: it does not own its data)
    assert plan.outputs(plan.gather(opt.state))[o0] is not buf._expr.data


def test_large_outputs_use_the_loop():
    """An Executable that keeps large outputs for reuse holds one more reference to them:
    such a plan keeps in_place.outputs' loop, which knows it."""
    _, _, small = _planned_sgd([(4,)])
    _, _, large = _planned_sgd([(520, 512)])
    assert small.outputs is not None
    assert large.in_place and large.outputs is None


def test_float64_momentum_against_numpy():
    rng = np.random.default_rng(5)
    start = rng.standard_normal((4, 3))
    p = gj.tensor(start.copy(), requires_grad=True)
    opt = gj.optim.SGD([p], lr=0.05, momentum=0.9)
    want, buf = start.copy(), None
    kept = 0
    for step in range(10):
        opt.zero_grad()
        ((p ** 3).sum() + (p * step).sum()).backward()
        g = 3 * want ** 2 + step
        buf = g.copy() if buf is None else 0.9 * buf + g
        want = want - 0.05 * buf
        before = id(opt.state[p]["momentum_buffer"]._expr) if step else None
        opt.step()
        kept += before == id(opt.state[p]["momentum_buffer"]._expr)
        np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12, atol=1e-12)
    assert kept > 0
