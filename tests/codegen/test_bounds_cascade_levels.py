"""The summation cascade's stack walk (`gj.cascade.*`, codegen/summation.py) indexes the
stack by the bits of the block count; in bounds-check mode a count past the stack's
LEVELS sets the error flag and skips the walk (docs/design.md's bounds table). Spoiled here
with a stack of two levels: without the check the walk wrote past the stack array (a
segfault); with it, BoundsError and the inputs untouched."""
import pytest

from codegen import summation
from tests.codegen.test_bounds_spoiled import _checked_equals_plain, _inputs, _raises_untouched
from tests.prim_samples import T, make_fn


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_a_block_count_past_the_cascade_stack_raises(dtype, monkeypatch):
    fn = make_fn("sum", [T(dtype, (5000,))], lambda b, x: [b.reduce_sum(x, axes=(0,))])
    args = _inputs(fn)
    _checked_equals_plain(fn, args)              # 48 levels: the check never fires
    monkeypatch.setattr(summation, "LEVELS", 2)  # 2 levels: at most 3 blocks of 5000 / 16
    _raises_untouched(fn, args)

