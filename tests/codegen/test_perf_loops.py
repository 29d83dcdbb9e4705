"""scan carries that the body returns unchanged are handed over once, not copied every step."""
import numpy as np
import pytest

import runtime
from codegen.control import aux_types, invariant_carries, prepare_loop
from codegen.fusion import KernelStep, plan_function
from ir.interpret import interpret
from tests.prim_samples import T, make_fn
from tests.codegen.test_codegen_primitives import assert_same


def weighted_scan(length: int, reverse: bool = False, weights_as_ys: bool = False):
    """carry (h, W, c): h <- tanh(h @ W + x), W and c pass through; ys = h (and W)."""
    h, w, c = T("f64", (4, 8)), T("f64", (8, 8)), T("f64", (3,))

    def step(b, h, w, c, x):
        new_h = b.tanh(b.add(b.dot_general(h, w, contract=((1,), (0,)), batch=((), ())), x))
        return [new_h, w, c, new_h] + ([w] if weights_as_ys else [])
    body = make_fn("step", [h, w, c, h], step)
    return make_fn("f", [h, w, c, T("f64", (length, 4, 8))], lambda b, h0, w0, c0, xs: list(
        b.emit("scan", h0, w0, c0, xs, num_carry=3, length=length, reverse=reverse,
               regions=(body,))))


def scan_op(fn):
    return next(op for op in fn.body if op.prim.name == "scan")


def test_pass_through_carries_leave_the_body_results():
    op = scan_op(weighted_scan(5))
    assert invariant_carries(op) == (1, 2)
    prepared = prepare_loop(op)
    assert prepared.params["invariant"] == (1, 2)
    assert len(prepared.regions[0].results) == len(op.regions[0].results) - 2
    assert len(aux_types(prepared)) == 1                  # only h ping-pongs
    assert prepare_loop(prepared) is prepared
    steps = [s for s in plan_function(weighted_scan(5)).steps if isinstance(s, KernelStep)]
    assert steps[0].op.params["invariant"] == (1, 2)


@pytest.mark.parametrize("length", [0, 1, 4, 5])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("weights_as_ys", [False, True])
def test_scan_with_invariant_carries_matches_the_interpreter(length, reverse, weights_as_ys):
    fn = weighted_scan(length, reverse, weights_as_ys)
    rng = np.random.default_rng(length)
    args = [rng.standard_normal((4, 8)), rng.standard_normal((8, 8)) * 0.3,
            rng.standard_normal(3), rng.standard_normal((length, 4, 8))]
    for bounds_check in (False, True):
        assert_same(runtime.compile(fn, bounds_check=bounds_check)(*args), interpret(fn, *args))
