"""`x.pow(n)` offered to the followed step from elementwise.pow (no is_scalar, no op wrapper,
as linalg.matmul offers a product): each spelling of a scalar power followed bitwise as
capture off, the wrapper skipped while followed, a changed exponent or an operand that
requires grad falling back, and the user's line of a followed power in the IR."""
import numpy as np
import pytest

import gradjit as gj
from ir.printer import print_function
from tests.api.capture_check import assert_bitwise, plain_capture, run_off_and_on  # noqa: F401
from tracer.expr import build_function
from tracer.ops import elementwise as ew

pytestmark = pytest.mark.usefixtures("plain_capture")    # capture reset around each test

SPELLINGS = {
    "method": lambda x, n: x.pow(n),
    "operator": lambda x, n: x ** n,
    "function": lambda x, n: gj.pow(x, n),
}


def power_loop(steps: int, spell, exponents=(2, 3), change=None) -> list:
    """A loop of scalar powers and a read per step; change(t) -> the exponents of step t."""
    x = gj.linspace(0.25, 1.5, 40)
    w = gj.tensor(0.25)
    out = []
    for t in range(steps):
        n, m = change(t) if change is not None else exponents
        y = w * spell(x, n) + spell(x, m)
        out.append((y - x).pow(2).sum().item())
        w -= 1e-3 * (y * x).sum()
    return out + [w.numpy().copy()]


@pytest.fixture
def wrapper_calls(monkeypatch):
    """The calls that reached _pow_scalar's op wrapper (the general path)."""
    calls = []
    wrapper = ew._pow_scalar

    def counting(*args, **kwargs):
        calls.append(args)
        return wrapper(*args, **kwargs)
    monkeypatch.setattr(ew, "_pow_scalar", counting)
    return calls


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("exponents", [(2, 3), (2.0, 0.5), (-1, 1)])
def test_each_spelling_follows_bitwise_without_the_wrapper(spelling, exponents, wrapper_calls):
    steps = 30
    on, delta, off = run_off_and_on(power_loop, steps, SPELLINGS[spelling], exponents)
    assert_bitwise(on, off)
    assert delta["reads"] >= steps - 5 and delta["breaks"] <= 1
    # capture off: every power (3 a step) through the wrapper; on: only until the tape
    # is learnt (the loop's last step's pow inside `.pow(2)` of the loss included)
    assert len(wrapper_calls) - 3 * steps <= 3 * 5


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_changed_exponent_falls_back_bitwise(spelling, wrapper_calls):
    def change(t):
        return (2, 3) if t < 12 else (2, 4) if t < 20 else (2.5, 3)
    on, delta, off = run_off_and_on(power_loop, 30, SPELLINGS[spelling], change=change)
    assert_bitwise(on, off)
    assert delta["breaks"] >= 2 and delta["tapes"] >= 3
    np.testing.assert_allclose(on[-1], off[-1])


def test_an_operand_requiring_grad_takes_the_general_path():
    def loop(steps):
        x = gj.linspace(-1.0, 1.0, 8)
        out = []
        for t in range(steps):
            if t == 10:
                x.requires_grad_(True)
            loss = x.pow(2).sum()
            if x.requires_grad:
                loss.backward()
                out.append(x.grad.numpy().copy())
                x.grad = None
            out.append(loss.item())
        return out
    on, delta, off = run_off_and_on(loop, 16)
    assert_bitwise(on, off)
    assert delta["breaks"] >= 1


def test_a_followed_power_names_the_users_line_in_the_ir():
    def loop(steps):
        x = gj.linspace(-1.0, 1.0, 8)
        kept = []
        for _ in range(steps):
            p = x.pow(3)                                     # the line named
            kept.append(p)
            (p * 2.0).sum().item()
        fn, _ = build_function("f", [], [kept[-2]._expr])
        return [print_function(fn)]
    step_on, _, step_off = run_off_and_on(loop, 12)
    assert step_on == step_off
    assert "the line named" not in step_on[0]                 # (the IR names file:line)
    assert "integer_pow" in step_on[0] and "test_step_capture_pow.py:" in step_on[0]
