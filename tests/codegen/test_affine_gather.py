"""Gathers at affine positions (codegen/affine_index.py): the im2col gather of conv1d/conv2d
computes its positions from the loop counters with no clamp (and no stored index array),
the zero-padded input is stored first; the results are the interpreter's, bitwise for the
gather (a copy), and gradients match finite differences. An affine index that leaves the
axis is still clamped."""
import itertools

import numpy as np
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen.affine_index import affine_form, affine_range
from codegen.fusion import plan_function
from ir.interpret import interpret
from ir.passes import optimize
from tests.gradcheck import check_grads, f32, i64, make_fn

F = gj.nn.functional


def _direct_conv(x, w, stride, pad, dil):
    """Cross-correlation by its definition (loops over the kernel offsets), float64."""
    nd = x.ndim - 2
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(p, p) for p in pad])
    kernel = w.shape[2:]
    out = [(xp.shape[2 + i] - dil[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(nd)]
    y = np.zeros((x.shape[0], w.shape[0]) + tuple(out))
    for offs in itertools.product(*(range(k) for k in kernel)):
        win = xp[(Ellipsis,) + tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                                     for o, d, s, n in zip(offs, dil, stride, out))]
        y += np.einsum("nc...,oc->no...", win, w[(Ellipsis,) + offs].astype(np.float64))
    return y


@st.composite
def conv_cases(draw):
    nd = draw(st.sampled_from([1, 2]))
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    sizes = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9))
                  for k, d, p in zip(kernel, dil, pad))
    return nd, n, c, o, sizes, kernel, stride, dil, pad


def _conv_fn(nd, x, w, stride, pad, dil):
    conv = F.conv1d if nd == 1 else F.conv2d
    return gj.make_ir(lambda x, w: conv(x, w, stride=stride, padding=pad, dilation=dil))(x, w)


def _gathers(fn):
    return [op for op in fn.body if op.prim.name == "gather"]


@settings(max_examples=40, deadline=None)
@given(conv_cases(), st.integers(0, 2 ** 31))
def test_conv_compiled_matches_interpreter_and_definition(case, seed):
    nd, n, c, o, sizes, kernel, stride, dil, pad = case
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, c) + sizes).astype(np.float32)
    w = r.standard_normal((o, c) + kernel).astype(np.float32)
    fn = optimize(_conv_fn(nd, x, w, stride, pad, dil))
    got = np.asarray(runtime.compile(fn)(x, w)[0])
    np.testing.assert_allclose(got, interpret(fn, x, w)[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, _direct_conv(x, w, stride, pad, dil), rtol=1e-4, atol=1e-4)
    # the gather alone (the columns) is a copy: bitwise the interpreter's
    (g,) = _gathers(fn)
    cols = type(fn)("cols", fn.params, fn.body[:fn.body.index(g) + 1], [g.results[0]])
    assert np.array_equal(np.asarray(runtime.compile(cols)(x, w)[0]), interpret(cols, x, w)[0])


def test_padded_conv_plan_stores_the_padded_input_not_the_positions():
    x, w = np.zeros((2, 3, 8, 8), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    fn = optimize(_conv_fn(2, x, w, (1, 1), (1, 1), (1, 1)))
    (g,) = _gathers(fn)
    plan = plan_function(fn)
    producers = {r: op for op in fn.body for r in op.results}
    stored = {producers[v].prim.name for v in plan.materialized if v in producers}
    assert "pad" in stored
    assert g.inputs[1] not in plan.materialized
    assert not stored & {"iota", "add", "mul"}            # no index array is computed
    form = affine_form(g.inputs[1], producers)
    assert form is not None
    lo, hi = affine_range(form, g.inputs[1].shape)
    assert lo == 0 and hi == 3 * 10 * 10 - 1              # the padded (3, 10, 10) sample


def test_stride_one_gather_rows_are_contiguous_copies():
    # the point of the affine form: LLVM sees consecutive loads along the output row
    x, w = np.zeros((4, 3, 32, 32), np.float32), np.zeros((16, 3, 3, 3), np.float32)
    fn = optimize(_conv_fn(2, x, w, (1, 1), (1, 1), (1, 1)))
    (g,) = _gathers(fn)
    cols = type(fn)("cols", fn.params, fn.body[:fn.body.index(g) + 1], [g.results[0]])
    text = runtime.lower(cols).optimized_llvm_ir
    assert "llvm.memcpy" in text or "load <8 x float>" in text


def test_affine_index_out_of_the_axis_is_still_clamped():
    # positions 3*i - 2 over a length-5 axis: below 0 and past the end, clamped as JAX does
    def build(b, x):
        i = b.iota(dtype="i64", shape=(4,), dim=0)
        pos = b.sub(b.mul(i, b.const(3, "i64", (4,))), b.const(2, "i64", (4,)))
        return b.gather(x, pos, axis=0)
    fn = make_fn(build, f32[5])
    producers = {r: op for op in fn.body for r in op.results}
    assert affine_range(affine_form(_gathers(fn)[0].inputs[1], producers), (4,)) == (-2, 7)
    x = np.arange(5, dtype=np.float32) + 1
    got = np.asarray(runtime.compile(fn)(x)[0])
    assert np.array_equal(got, interpret(fn, x)[0])
    assert np.array_equal(got, x[np.clip(3 * np.arange(4) - 2, 0, 4)])


def test_product_of_two_indices_is_not_affine():
    def build(b, x):
        i = b.iota(dtype="i64", shape=(3, 3), dim=0)
        j = b.iota(dtype="i64", shape=(3, 3), dim=1)
        return b.add(b.mul(i, j), x)
    fn = make_fn(build, i64[3, 3])
    producers = {r: op for op in fn.body for r in op.results}
    prod = fn.body[-1].inputs[0]
    assert producers[prod].prim.name == "mul" and affine_form(prod, producers) is None
    assert affine_form(fn.results[0], producers) is None       # a parameter is not affine


@settings(max_examples=8, deadline=None)
@given(conv_cases(), st.integers(0, 2 ** 31))
def test_conv_gradients_f64_finite_differences(case, seed):
    nd, n, c, o, sizes, kernel, stride, dil, pad = case
    r = np.random.default_rng(seed)
    x, w = r.standard_normal((n, c) + sizes), r.standard_normal((o, c) + kernel)
    check_grads(_conv_fn(nd, x, w, stride, pad, dil), [x, w], modes=("rev",))


def test_compiled_conv_gradient_f64_finite_differences():
    r = np.random.default_rng(3)
    x, w = r.standard_normal((2, 3, 6, 5)), r.standard_normal((4, 3, 3, 2))
    u = r.standard_normal((2, 4, 3, 5))

    def loss(x, w):
        return (F.conv2d(x, w, stride=(2, 1), padding=(1, 1), dilation=(1, 2)) * gj.tensor(u)).sum()
    gx, gw = gj.jit(gj.grad(loss, argnums=(0, 1)))(x, w)
    v = r.standard_normal(w.shape)
    eps = 1e-6
    fd = (float(gj.jit(loss)(x, w + eps * v)) - float(gj.jit(loss)(x, w - eps * v))) / (2 * eps)
    np.testing.assert_allclose(np.sum(np.asarray(gw) * v), fd, rtol=1e-6)
    vx = r.standard_normal(x.shape)
    fd = (float(gj.jit(loss)(x + eps * vx, w)) - float(gj.jit(loss)(x - eps * vx, w))) / (2 * eps)
    np.testing.assert_allclose(np.sum(np.asarray(gx) * vx), fd, rtol=1e-6)
