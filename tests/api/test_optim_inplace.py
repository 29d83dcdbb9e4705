"""Optimizer state written over its old arrays (tracer/optim/in_place.py): every loop runs
with it and without from the same start, and parameters and state must be bitwise equal after
every step; counters show the state was written in place, and that it was not where something
else could still see the old value (which must then keep it)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tests.api.optim_loops import MAKERS, SHAPES, assert_same_steps, run_loop
from tracer.optim import fast_step, in_place

IN_PLACE = ["SGD momentum", "SGD nesterov", "Adam", "AdamW", "Adam amsgrad wd", "groups"]


def _snapshot(params, opt) -> list:
    """Parameters and state as bytes. NOTE: a state tensor's value is read from its data
    Expr: .detach() makes a tensor sharing its storage (whose root then holds the Expr) and
    .numpy() shares the array with NumPy, so either would (rightly) stop the state being
    written in place after it."""
    out = [p.detach().numpy().tobytes() for p in params]
    for p in params:
        for k, v in sorted(opt.state[p].items()):
            out.append(k)
            out.append(_value(v).tobytes() if isinstance(v, gj.Tensor) else repr(v))
    return out


def _value(t) -> np.ndarray:
    """t's value without touching its storage (see _snapshot)."""
    data = t._expr.data
    return data if data is not None else t.clone().numpy()


def _run(make, shapes, steps, enabled, event=None):
    """Snapshots after each step (as bytes), and in_place's counters over the loop."""
    return run_loop(in_place, make, shapes, steps, enabled, _snapshot, event, event_first=False)


def _same_both_ways(make, shapes=SHAPES, steps=10, event=None) -> dict:
    on, counts = _run(make, shapes, steps, True, event)
    off, none = _run(make, shapes, steps, False, event)
    assert none["in_place"] == 0
    assert_same_steps(on, off)
    return counts


@pytest.mark.parametrize("name", IN_PLACE)
def test_state_written_in_place_same_bits(name):
    counts = _same_both_ways(MAKERS[name])
    assert counts["verified"] >= 1 and counts["refused"] == 0
    assert counts["in_place"] > 0


def test_plain_sgd_has_no_state_to_write():
    counts = _same_both_ways(MAKERS["SGD"])
    assert counts["in_place"] == 0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from([(5,), (3, 7), (1,), (), (2, 1, 3), (64, 33)]), min_size=1,
                max_size=4),
       st.sampled_from(IN_PLACE))
def test_shapes(shapes, name):
    counts = _same_both_ways(MAKERS[name], shapes, steps=8)
    assert counts["in_place"] > 0


def _buffer(opt, p):
    return opt.state[p]["momentum_buffer"]


def test_numpy_view_of_buffer_keeps_old_values():
    """A NumPy array the user took of the momentum buffer holds its array: the step writes a
    fresh one, and the array the user holds keeps the value it had."""
    held = {}

    def take(step, params, opt):
        if step == 7:
            held["view"] = _buffer(opt, params[0]).numpy()
            held["bytes"] = held["view"].tobytes()
        if step == 8:
            assert held["view"].tobytes() == held["bytes"]
    counts = _same_both_ways(MAKERS["SGD momentum"], event=take)
    assert counts["in_place"] > 0 and counts["fresh"] > 0


def test_pending_expression_of_buffer_keeps_old_value():
    """An expression of the buffer recorded before a step (not yet computed) reads the value
    the buffer had then."""
    held = {}

    def take(step, params, opt):
        if step == 7:
            buf = _buffer(opt, params[1])
            held["expect"] = _value(buf) * 2 + 1
            held["pending"] = buf * 2 + 1
        if step == 8:
            assert held["pending"].numpy().tobytes() == held["expect"].tobytes()
    _same_both_ways(MAKERS["SGD momentum"], event=take)


def test_detached_and_cloned_buffer():
    """A detached tensor shares the buffer's storage and shows its new value (as PyTorch's
    in-place update shows in it); a clone keeps the value it had."""
    held = {}

    def take(step, params, opt):
        if step == 7:
            buf = _buffer(opt, params[0])
            held["detached"], held["clone"] = buf.detach(), buf.clone()
            held["bytes"] = _value(buf).tobytes()
        if step == 8:
            assert held["clone"].numpy().tobytes() == held["bytes"]
            now = _value(_buffer(opt, params[0])).tobytes()
            assert now != held["bytes"]
            assert held["detached"].numpy().tobytes() == now
    _same_both_ways(MAKERS["SGD momentum"], event=take)


def test_held_state_tensor_follows_like_before():
    """The state tensor object itself, held by the user, shows the new value after a step
    with and without writing in place (it is the optimizer's tensor either way)."""
    held = {}

    def take(step, params, opt):
        if step == 6:
            held["tensor"] = _buffer(opt, params[0])
        if step > 6:
            assert held["tensor"] is _buffer(opt, params[0])
    _same_both_ways(MAKERS["SGD momentum"], event=take)


def test_loaded_state_dict_and_zeroed_buffer():
    """The state replaced from outside (load_state_dict, a buffer zeroed in place by the user)
    between steps: same bits as without writing in place."""
    def poke(step, params, opt):
        if step == 5:
            opt.load_state_dict(opt.state_dict())
        if step == 7:
            with gj.no_grad():
                _buffer(opt, params[0]).zero_()
    _same_both_ways(MAKERS["SGD momentum"], event=poke, steps=12)


def test_verified_refuses_a_program_reading_an_input_it_overwrote():
    """`verified` runs the program on copies: one that reads a state input after writing its
    output there gives other bits in place, and is refused."""
    arrays = [np.arange(6, dtype=np.float32), np.full(6, 3.0, np.float32)]
    specs = [((6,), np.dtype(np.float32)), ((6,), np.dtype(np.float32))]
    found = ((1, 1),)

    def bad(ins, outs):
        outs[1][:] = ins[1] + 1.0
        outs[0][:] = ins[0] * ins[1]          # reads input 1 after output 1 was written
        return outs

    def good(ins, outs):
        state = ins[1] + 1.0
        outs[0][:] = ins[0] * ins[1]
        outs[1][:] = state
        return outs
    before = dict(in_place.STATS)
    assert not in_place.verified(bad, specs, arrays, found)
    assert in_place.verified(good, specs, arrays, found)
    assert in_place.STATS["refused"] == before["refused"] + 1
    assert in_place.STATS["verified"] == before["verified"] + 1
    assert arrays[1].tolist() == [3.0] * 6          # the real arrays are not touched


def test_aliasable_refuses_non_elementwise_programs():
    sgd = gj.jit(lambda p, g, b: (p - 0.1 * (0.9 * b + g), 0.9 * b + g))
    summed = gj.jit(lambda p, g, b: (p - g.sum(), b + g))
    moved = gj.jit(lambda p, g, b: (p - g, gj.flip(b, (0,)) + g))
    x = np.ones(4, np.float32)
    assert in_place.aliasable(sgd.lower(x, x, x).ir)
    assert not in_place.aliasable(summed.lower(x, x, x).ir)
    assert not in_place.aliasable(moved.lower(x, x, x).ir)


def test_disabled_plans_never_write_in_place():
    fast_step.ENABLED = False
    try:
        _, counts = _run(MAKERS["Adam"], SHAPES, 8, True)
    finally:
        fast_step.ENABLED = True
    assert counts["in_place"] == 0


def test_float64_momentum_against_numpy():
    """SGD momentum in float64 with the state written in place: the textbook update in
    NumPy, step by step (the same operations in the same order: equal to rounding)."""
    rng = np.random.default_rng(3)
    start = rng.standard_normal((5, 3))
    p = gj.tensor(start.copy(), requires_grad=True)
    opt = gj.optim.SGD([p], lr=0.05, momentum=0.9)
    want, buf = start.copy(), None
    before = in_place.STATS["in_place"]
    for step in range(10):
        opt.zero_grad()
        ((p ** 3).sum() + (p * step).sum()).backward()
        g = 3 * want ** 2 + step
        buf = g.copy() if buf is None else 0.9 * buf + g
        want = want - 0.05 * buf
        opt.step()
        np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12, atol=1e-12)
    assert in_place.STATS["in_place"] > before


@pytest.mark.parametrize("name, states", [("SGD momentum", 1), ("Adam", 2)])
def test_large_state_held_for_recycling(name, states):
    """A state of 1 MiB and more: the program's Executable also holds its last fresh
    array for reuse (runtime.executable's recycling), which is not a reader: every step on
    the generated path writes it in place, the first one too."""
    generated = fast_step.STATS["generated"]
    _, counts = _run(MAKERS[name], [(520, 512)], 12, True)
    generated = fast_step.STATS["generated"] - generated
    assert generated >= 3 and counts["in_place"] == states * generated
