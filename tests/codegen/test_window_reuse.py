"""A small reduction (computed per output element) that reads another root of the same
space through a broadcast putting the reduced axes back reads it at its own output index, so
the two share one loop nest and the second takes the first's value from its register: the
max pool's max and its window hits' count (codegen.fusion.window_of, elemental.root_at).
Checked: the plan fuses them (and still refuses other broadcasts), the emitted code loads
nothing back, the bits equal those of separate nests and of the buffer path (NaN,
infinities, signed zeros; hypothesis over shapes and windows), bounds-check mode agrees.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import runtime
from codegen import elemental, fusion
from codegen.fusion import LoopNest, plan_function
from ir.interpret import interpret
from tests.codegen.plan_run import pool_step, run_freed, sprinkle_specials
from tests.prim_samples import T, make_fn


def _nests(fn) -> list:
    """(space, names of the reductions computed there) of each loop nest of fn's plan."""
    plan = plan_function(fn)
    names = {op.results[0]: op.prim.name for op in fn.body}
    return [(step.space, sorted(names[r.value] for r in step.roots))
            for step in plan.steps if isinstance(step, LoopNest)]


def _build(fn, args, mode: str, bounds_check: bool = False):
    """Outputs with the window reuse ("fused"), with the nests fused but the second root
    loading the first's buffer ("load"), or as separate nests ("apart")."""
    patches = {"apart": ((fusion, "window_of", lambda op: None),),
               "load": ((elemental.Elemental, "root_at", lambda self, v, dims: None),)}
    return run_freed(fn, args, patches.get(mode, ()), bounds_check)


def _args(fn, rng, special: bool):
    out = []
    for p in fn.params:
        x = np.round(rng.standard_normal(p.type.shape) * 2) / 2       # ties in the windows
        if special:
            sprinkle_specials(rng, x)
        out.append(x.astype(p.type.np_dtype))
    return out


def _same_bits(fn, args):
    fused = _build(fn, args, "fused")
    for mode in ("load", "apart"):
        for a, b in zip(fused, _build(fn, args, mode)):
            assert a.tobytes() == b.tobytes(), mode
    for a, b in zip(fused, _build(fn, args, "fused", bounds_check=True)):
        assert a.tobytes() == b.tobytes()
    return fused


def test_the_max_and_its_window_hits_share_a_nest():
    fn = pool_step("f32", 2, 3, 4)
    pooled = (2, 3, 4, 4)
    assert (pooled, ["reduce_max", "reduce_sum"]) in _nests(fn)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fusion, "window_of", lambda op: None)
        apart = _nests(fn)
    assert (pooled, ["reduce_max"]) in apart and (pooled, ["reduce_sum"]) in apart


def test_the_count_takes_the_max_from_its_register():
    """With root_at the count's broadcast of the max is the max's register: the emitted
    code has one load fewer per window element than the buffer path."""
    fn = pool_step("f32", 2, 3, 4)
    fused = runtime.lower(fn).llvm_ir
    with pytest.MonkeyPatch.context() as m:
        m.setattr(elemental.Elemental, "root_at", lambda self, v, dims: None)
        loaded = runtime.lower(fn).llvm_ir
    assert fused.count(" = load ") + 4 <= loaded.count(" = load ")


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_signed_zeros_infinities_and_nan(dtype):
    fn = pool_step(dtype, 1, 2, 2)
    dtype = np.float32 if dtype == "f32" else np.float64
    conv = np.zeros((1, 2, 4, 4), dtype)
    conv[0, 0, 0, 0], conv[0, 0, 0, 1] = -0.0, 0.0
    conv[0, 1, 0, 0], conv[0, 1, 1, 1] = np.nan, np.inf
    conv[0, 1, 2, 2], conv[0, 1, 2, 3], conv[0, 1, 3, 3] = -np.inf, np.inf, np.inf
    bias = np.array([-0.0, 0.0], dtype)
    g = (np.arange(8) - 3).astype(dtype).reshape(1, 2, 2, 2)
    fused = _same_bits(fn, [conv, bias, g])
    want = interpret(fn, conv, bias, g)
    for a, w in zip(fused, want):
        np.testing.assert_array_equal(a, np.asarray(w))
    assert np.isnan(fused[0][0, 1, 0, 0])


def test_a_broadcast_of_a_moved_value_is_not_taken():
    """The max read transposed (another element of the output) stays in its own nest; the
    straight broadcast joins the max's."""
    win = (4, 3, 4)

    def body(b, x):
        m = b.reduce_max(x, axes=(1,))                                 # (4, 4)
        straight = b.broadcast_in_dim(m, dims=(0, 2), shape=win)
        moved = b.broadcast_in_dim(b.transpose(m, perm=(1, 0)), dims=(0, 2), shape=win)
        return [m, b.reduce_sum(b.sub(x, straight), axes=(1,)),
                b.reduce_min(b.sub(x, moved), axes=(1,))]
    fn = make_fn("moved", [T("f32", win)], body)
    spaces = _nests(fn)
    assert ((4, 4), ["reduce_max", "reduce_sum"]) in spaces
    assert ((4, 4), ["reduce_min"]) in spaces
    _same_bits(fn, _args(fn, np.random.default_rng(0), True))


@settings(max_examples=25, deadline=None)
@given(dtype=st.sampled_from(["f32", "f64"]), n=st.integers(1, 3), c=st.integers(1, 3),
       out=st.integers(1, 6), seed=st.integers(0, 2**16), special=st.booleans())
def test_pool_steps_keep_their_bits(dtype, n, c, out, seed, special):
    fn = pool_step(dtype, n, c, out)
    args = _args(fn, np.random.default_rng(seed), special)
    fused = _same_bits(fn, args)
    for a, w in zip(fused, interpret(fn, *args)):
        np.testing.assert_allclose(a, np.asarray(w), rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["reduce_sum", "reduce_max", "reduce_min"]),
       lead=st.sampled_from([(2,), (3, 2)]), window=st.integers(2, 5), inner=st.integers(2, 9),
       seed=st.integers(0, 2**16))
def test_window_reductions_of_a_reduction_keep_their_bits(kind, lead, window, inner, seed):
    """x - broadcast(reduce(x)) reduced again over the same window (a centred sum, a
    softmax-like shift), the window between kept axes: one nest, same bits."""
    shape = lead + (window, inner)
    axis = len(lead)
    kept = tuple(a for a in range(len(shape)) if a != axis)

    def body(b, x):
        r = getattr(b, kind)(x, axes=(axis,))
        back = b.broadcast_in_dim(r, dims=kept, shape=shape)
        return [r, b.reduce_sum(b.sub(x, back), axes=(axis,))]
    fn = make_fn("centred", [T("f64", shape)], body)
    taken = [s for s in _nests(fn) if len(s[1]) == 2]
    assert taken == [(lead + (inner,), sorted([kind, "reduce_sum"]))]
    _same_bits(fn, _args(fn, np.random.default_rng(seed), True))
