"""A pad along a nest's innermost axis: the loop cut at the operand's edges (codegen.
concat_split's cuts), and the pad (codegen.elemental's _pad) reading the operand at an
affine index inside them and zeros outside, instead of a clamped index and a select per
element (which kept the loop scalar on AVX2: the CNN's [32,3,34,34] pad ran ~8x a copy).

Checked by counters (ranges read directly, ranges known to be padding), bitwise against the
same program built with the cut turned off and against NumPy / the interpreter, and by the
refusals (interior padding on the inner axis, a pad read through a transpose) that keep the
clamped form and still give the same bits.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from codegen import elemental
from ir.interpret import interpret
from tests.codegen.cut_build import build
from tests.prim_samples import T, make_fn


def _counts():
    return dict(elemental.PAD_STATS)


def _conv_pad(b, x):
    """The CNN's input pad (1 on each side of H and W), then a use of it."""
    p = b.pad(x, lo=(0, 0, 1, 1), hi=(0, 0, 1, 1), interior=(0, 0, 0, 0))
    return [p, b.mul(p, p)]


def test_conv_pad_reads_the_operand_directly_and_equals_numpy():
    fn = make_fn("pad", [T("f32", (2, 3, 6, 7))], _conv_pad)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)
    before = _counts()
    split = build(fn, True)
    after = _counts()
    assert after["inner_reads"] > before["inner_reads"]
    assert after["inner_zeros"] > before["inner_zeros"]
    plain = build(fn, False)
    assert _counts() == after              # the cut off: the clamped form, nothing counted
    outs, outs0 = split.run([x]), plain.run([x])
    ref = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert outs[0].tobytes() == outs0[0].tobytes() == ref.tobytes()
    assert outs[1].tobytes() == outs0[1].tobytes() == (ref * ref).tobytes()


@pytest.mark.parametrize("case", ["interior", "transposed", "outer only"])
def test_refused_pads_keep_the_clamped_form(case):
    """Interior padding on the inner axis, a pad read at a transposed index and a pad of
    outer axes only are not cut: nothing counted, the same bits as without the cut."""
    def body(b, x):
        if case == "interior":
            return [b.pad(x, lo=(1, 2), hi=(0, 1), interior=(0, 1))]
        if case == "transposed":
            p = b.pad(x, lo=(1, 2), hi=(2, 1), interior=(0, 0))
            return [b.add(b.transpose(p, perm=(1, 0)), b.transpose(p, perm=(1, 0)))]
        return [b.pad(x, lo=(1, 0), hi=(2, 0), interior=(0, 0))]
    fn = make_fn("pad", [T("f64", (5, 6))], body)
    x = np.random.default_rng(1).standard_normal((5, 6))
    before = _counts()
    out = build(fn, True).run([x])[0]
    assert _counts() == before
    assert out.tobytes() == build(fn, False).run([x])[0].tobytes()
    assert out.tobytes() == np.asarray(interpret(fn, x)[0]).tobytes()


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 9), min_size=1, max_size=3),
       pads=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 1)),
                     min_size=3, max_size=3),
       producer=st.sampled_from(["param", "square"]),
       reduce=st.sampled_from([None, "outer", "inner"]),
       dtype=st.sampled_from(["f32", "f64", "i32"]))
def test_random_pads_equal_the_uncut_loop_and_the_interpreter(shape, pads, producer, reduce,
                                                              dtype):
    """Random pads (interior padding too) of a parameter or of a fused square, with an
    elementwise consumer and an optional sum: bitwise the uncut program and the interpreter
    (small integers and their squares: every sum is exact)."""
    pads = pads[:len(shape)]
    lo, hi, interior = (tuple(p[i] for p in pads) for i in range(3))

    def body(b, x):
        src = x if producer == "param" else b.mul(x, x)
        p = b.pad(src, lo=lo, hi=hi, interior=interior)
        y = b.add(b.mul(p, p), p)
        if reduce is None or p.type.ndim == 1 and reduce == "outer":
            return [y]
        axes = tuple(range(p.type.ndim - 1)) if reduce == "outer" else (p.type.ndim - 1,)
        return [y, b.reduce_sum(y, axes=axes)]
    fn = make_fn("pad", [T(dtype, tuple(shape))], body)
    x = np.random.default_rng(sum(shape)).integers(-9, 9, shape).astype(fn.params[0].type.np_dtype)
    outs = build(fn, True).run([x])
    plain = build(fn, False).run([x])
    refs = interpret(fn, x)
    for out, out0, ref in zip(outs, plain, refs):
        assert out.tobytes() == out0.tobytes()
        assert out.tobytes() == np.asarray(ref, dtype=out.dtype).tobytes()


@pytest.mark.parametrize("n_threads", [1, 2])
def test_pad_on_the_thread_pool_equals_numpy(n_threads):
    """A [32,16,32,32] pad is large enough for the nest to hand rows to the pool: each
    task's inner loop is cut the same way, for 1 and 2 threads alike."""
    from runtime import threads
    shape = (32, 16, 32, 32)
    fn = make_fn("pad", [T("f32", shape)], _conv_pad)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    before = _counts()
    exe = build(fn, True)
    assert exe.uses_pool                     # the parallel form of the nest
    assert _counts()["inner_reads"] > before["inner_reads"]
    try:
        threads.set_num_threads(n_threads)
        padded, squared = exe.run([x])
    finally:
        threads.set_num_threads(None)
    ref = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert padded.tobytes() == ref.tobytes()
    assert squared.tobytes() == (ref * ref).tobytes()
