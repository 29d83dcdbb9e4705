"""`x[mask] = v` in a followed step (tracer/autograd/inplace.py's setitem): a tensor that needs
no grad and shares no storage or NumPy memory offers the put to the captured step straight
from setitem, then does inplace()'s tail. Bitwise the values of capture off (VERIFY on: each
tape read checked against the general path), the counter shows the path, and each tensor it
must not take (views, NumPy memory, requires_grad, a dtype PyTorch refuses, a put the step
does not follow) goes through inplace() with the same values, versions and errors."""
import numpy as np
import pytest

import gradjit as gj
from ir.printer import print_function
from tests.api.capture_check import assert_bitwise, run_off_and_on, verified_capture  # noqa: F401
from tests.api.test_step_capture_views import tutorial_loop
from tracer.autograd import inplace
from tracer.expr import build_function

pytestmark = pytest.mark.usefixtures("verified_capture")
SHAPE = (16, 40, 12, 3)


def _puts(loop, *args, **kw):
    before = inplace.STATS["followed_puts"]
    on, delta, off = run_off_and_on(loop, *args, **kw)
    assert_bitwise(on, off)
    return inplace.STATS["followed_puts"] - before, delta


def test_the_tutorials_mask_fill_is_followed_from_setitem():
    puts, delta = _puts(tutorial_loop, 20, SHAPE)
    assert delta["reads"] >= 15 and puts >= 15 and delta["breaks"] <= 1


@pytest.mark.parametrize("f64", [False, True])
def test_float64_and_float32_equal_capture_off(f64):
    dtype = gj.float64 if f64 else gj.float32
    puts, _ = _puts(tutorial_loop, 14, SHAPE, dtype=dtype, seed=3)
    assert puts >= 9


def _loop(steps: int, how: str):
    """A step whose `g[g < 0] = 0.5` target is, from step 8, of the kind `how` names."""
    x = gj.linspace(-1.0, 1.0, 32)
    w = gj.tensor(0.25)
    out = []
    for t in range(steps):
        g = (w * x - 0.1).clone()
        late = t >= 8
        keep = None
        if late and how == "view":
            keep = g.view(4, 8)              # (a live view: g shares its storage)
        elif late and how == "numpy":
            keep = g.numpy()                 # (NumPy memory shares g's)
        elif late and how == "grad":
            g.requires_grad_(True)
        with gj.no_grad() if late and how == "grad" else _nothing():
            g[g < 0] = 0.5
        out.append(g._version)
        if keep is not None:
            out.append(np.array(keep).copy())
        out.append((g * x).sum().item())
        w -= 0.01 * g.detach().sum() if how == "grad" else 0.01 * g.sum()
    return out + [w.numpy().copy()]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("how", ["plain", "view", "numpy", "grad"])
def test_tensors_it_must_not_take_go_through_inplace_with_the_same_values(how):
    puts, delta = _puts(_loop, 14, how)
    if how == "plain":
        assert puts >= 8 and delta["breaks"] <= 1
    else:
        assert puts <= 6                      # (only before step 8)


def test_a_dtype_pytorch_refuses_raises_as_before_naming_the_line():
    x = gj.linspace(-1.0, 1.0, 8)
    for t in range(12):
        g = (x * 2.0).clone()
        if t < 10:
            g[g < 0] = 0
        else:
            with pytest.raises(RuntimeError, match="Index put requires the source and"):
                g[g < 0] = gj.ones(8, dtype=gj.float64)
            break
        (g.sum()).item()


def _line_loop(steps: int) -> list:
    """The IR text (with lines) of the put's result at each step, before the step's read."""
    x = gj.linspace(-1.0, 1.0, 8)
    texts = []
    for _ in range(steps):
        g = (x * 2.0).clone()
        g[g < 0] = 0                          # THE PUT
        fn, _ = build_function("f", [], [g._expr])
        texts.append(print_function(fn, locs=True))
        g.sum().item()
    return texts


def test_the_puts_line_is_the_users_in_the_ir():
    import inspect
    src, start = inspect.getsourcelines(_line_loop)
    line = start + [i for i, s in enumerate(src) if s.strip().endswith("# THE PUT")][0]
    puts, _ = _puts(_line_loop, 10)
    on, _, off = run_off_and_on(_line_loop, 10)
    assert puts >= 5 and on == off
    assert all(f"test_step_capture_put.py:{line}" in text for text in on)
