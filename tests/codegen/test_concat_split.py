"""A concatenate along a nest's innermost axis: the loop split at the pieces' boundaries.

codegen.concat_split: the nest runs one loop per piece and the concatenate reads only that
piece (no clamped reads of every piece and selects). Checked by counters (loops split,
pieces read directly), bitwise against the same program built with the split turned off,
and against the interpreter (bitwise for data movement and exact arithmetic, close for sums).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from codegen import concat_split
from ir.interpret import interpret
from tests.codegen.cut_build import build
from tests.prim_samples import T, make_fn


def _counts():
    return dict(concat_split.STATS)


def _packed_qkv_gradient(b, q, k, v):
    """The packed in_proj gradient of self-attention: three [B,H,S,D] gradients as
    [B,S,H*D] pieces of one [B,S,3*H*D] tensor, stored and summed over (B, S)."""
    pieces = []
    for x in (q, k, v):
        bsz, heads, seq, dim = x.type.shape
        t = b.transpose(x, perm=(0, 2, 1, 3))
        pieces.append(b.reshape(t, shape=(bsz, seq, heads * dim)))
    cat = b.concatenate(*pieces, axis=2)
    return [cat, b.reduce_sum(cat, axes=(0, 1))]


def test_packed_qkv_gradient_reads_each_piece_directly():
    types = [T("f32", (4, 2, 8, 16))] * 3
    fn = make_fn("qkv", types, _packed_qkv_gradient)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(t.shape).astype(np.float32) for t in types]
    before = _counts()
    split = build(fn, True)
    after = _counts()
    assert after["split_loops"] > before["split_loops"]
    assert after["piece_reads"] >= before["piece_reads"] + 3
    plain = build(fn, False)
    assert _counts() == after          # the split off: nothing counted
    cat, total = split.run(args)
    cat0, total0 = plain.run(args)
    assert cat.tobytes() == cat0.tobytes()
    assert total.tobytes() == total0.tobytes()       # the same additions, in the same order
    ref_cat, ref_total = interpret(fn, *args)
    assert cat.tobytes() == np.asarray(ref_cat).tobytes()
    np.testing.assert_allclose(total, ref_total, rtol=1e-6, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(widths=st.lists(st.integers(0, 19), min_size=1, max_size=5),
       outer=st.lists(st.integers(1, 5), min_size=0, max_size=2),
       last=st.booleans(), reduce=st.sampled_from([None, "outer", "inner"]),
       dtype=st.sampled_from(["f32", "f64", "i32"]))
def test_random_concatenates_equal_the_unsplit_loop_and_numpy(widths, outer, last, reduce,
                                                              dtype):
    """Random pieces along the last axis (split) or the first (not), with an elementwise
    consumer of exact arithmetic and an optional sum: bitwise the unsplit program, and the
    interpreter's values (sums to rounding)."""
    if sum(widths) == 0 or (not last and not outer):
        return
    axis = len(outer) if last else 0
    shapes = [tuple(outer) + (w,) if last else (w,) + tuple(outer[1:]) + (3,) for w in widths]
    types = [T(dtype, s) for s in shapes]

    def body(b, *xs):
        cat = b.concatenate(*xs, axis=axis)
        y = b.add(b.mul(cat, cat), cat)
        if reduce is None:
            return [y]
        axes = tuple(range(cat.type.ndim - 1)) if reduce == "outer" else (cat.type.ndim - 1,)
        return [y, b.reduce_sum(y, axes=axes)] if axes else [y]
    fn = make_fn("cat", types, body)
    rng = np.random.default_rng(sum(widths))
    args = [rng.integers(-9, 9, s).astype(t.np_dtype) for s, t in zip(shapes, types)]
    outs = build(fn, True).run(args)
    plain = build(fn, False).run(args)
    refs = interpret(fn, *args)
    for out, out0, ref in zip(outs, plain, refs):
        assert out.tobytes() == out0.tobytes()
        # small integers: every sum is exact, so the interpreter's bits too
        assert out.tobytes() == np.asarray(ref, dtype=out.dtype).tobytes()


def test_ranges_cut_only_inside():
    assert concat_split.ranges(0, 192, [64, 128]) == [(0, 64), (64, 128), (128, 192)]
    assert concat_split.ranges(10, 70, [64, 128]) == [(10, 64), (64, 70)]
    assert concat_split.ranges(0, 5, []) == [(0, 5)]


@pytest.mark.parametrize("known, expected", [((0, 4), 0), ((4, 7), 1), ((3, 5), None),
                                             ((7, 9), 3)])
def test_piece_in_range_names_the_one_piece(known, expected):
    """Pieces of widths 4, 3, 0, 2: a range inside one piece gives it (the empty one never)."""
    types = [T("f32", (2, w)) for w in (4, 3, 0, 2)]
    fn = make_fn("c", types, lambda b, *xs: [b.concatenate(*xs, axis=1)])
    op = fn.body[-1]
    found = concat_split.piece_in_range(op, known)
    if expected is None:
        assert found is None
    else:
        assert found[0] is op.inputs[expected]
        assert found[1] == [0, 4, 7, 7][expected]
