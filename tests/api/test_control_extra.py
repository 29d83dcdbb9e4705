"""gj.switch, gj.map, gj.associative_scan, scan/fori_loop with unroll=, and the dynamic
slices: values against NumPy (with JAX's index clamping), gradients against finite
differences in float64, forward mode, vmap, and native code against the interpreter."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from ir import walk_ops
from tests.gradcheck import numeric_grad as _fd

BRANCHES = [lambda x: gj.sin(x), lambda x: x * x, lambda x: gj.exp(x) * 0.5]
X = np.array([0.3, -1.2, 0.8])


def _np_branch(i, x):
    i = min(max(i, 0), 2)
    return [np.sin(x), x * x, np.exp(x) * 0.5][i]


# ---- switch --------------------------------------------------------------------------------

def test_switch_clamps_the_index_and_is_native_branches():
    f = gj.jit(lambda i, x: gj.switch(i, BRANCHES, x))
    for i in (-3, 0, 1, 2, 7):
        np.testing.assert_allclose(f(np.int32(i), X).numpy(), _np_branch(i, X), rtol=1e-14)
    fn = gj.make_ir(f)(np.int32(1), X)
    assert sum(op.prim.name == "cond" for op in walk_ops(fn)) == 2     # a tree of 3 leaves
    # libm's exp, correctly rounded here: NumPy's AVX-512 exp is one ulp off at -1.2
    assert gj.switch(5, BRANCHES, X).numpy().tolist() == [math.exp(v) * 0.5 for v in X]


@pytest.mark.parametrize("i", [0, 1, 2])
def test_switch_gradients_and_forward_mode(i):
    g = gj.grad(lambda x: gj.switch(np.int32(i), BRANCHES, x).sum())(X).numpy()
    np.testing.assert_allclose(g, _fd(lambda v: _np_branch(i, v).sum(), X), rtol=1e-7)
    # the branches are elementwise: the JVP along ones is the gradient of the sum
    _, t = gj.jvp(lambda x: gj.switch(np.int32(i), BRANCHES, x), (X,), (np.ones(3),))
    np.testing.assert_allclose(t.numpy(), g, rtol=1e-14)


def test_switch_with_a_batched_index():
    idx = np.array([0, 2, 1, -1], np.int32)
    xs = np.stack([X, X + 1, X - 1, X * 2])
    got = gj.vmap(lambda i, x: gj.switch(i, BRANCHES, x))(idx, xs).numpy()
    want = np.stack([_np_branch(int(i), x) for i, x in zip(idx, xs)])
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_switch_errors():
    with pytest.raises(ValueError, match="Empty branch sequence"):
        gj.switch(0, [], X)
    with pytest.raises(TypeError, match="index must be a scalar integer"):
        gj.jit(lambda i, x: gj.switch(i, BRANCHES, x))(np.float32(1.0), X)


# ---- map -----------------------------------------------------------------------------------

def test_map_values_gradients_and_batch_size():
    xs = np.arange(12.0).reshape(4, 3) / 7.0
    np.testing.assert_allclose(gj.map(lambda x: gj.sin(x).sum(), xs).numpy(),
                               np.sin(xs).sum(1), rtol=1e-14)
    out = gj.map(lambda x: {"a": x * 2.0, "b": x.sum()}, xs, batch_size=3)
    np.testing.assert_allclose(out["a"].numpy(), xs * 2, rtol=1e-14)
    np.testing.assert_allclose(out["b"].numpy(), xs.sum(1), rtol=1e-14)
    g = gj.grad(lambda v: (gj.map(lambda x: gj.sin(x) * x, v) ** 2).sum())(xs).numpy()
    np.testing.assert_allclose(g, _fd(lambda v: ((np.sin(v) * v) ** 2).sum(), xs), rtol=1e-6)
    fn = gj.make_ir(gj.jit(lambda v: gj.map(gj.sin, v)))(xs)
    assert [op.prim.name for op in fn.body] == ["scan"]


# ---- associative_scan ----------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(st.integers(1, 17), st.booleans())
def test_associative_scan_is_cumsum_and_cumprod(n, reverse):
    x = np.random.default_rng(n).uniform(0.5, 1.5, n)
    got = gj.associative_scan(lambda a, b: a + b, x, reverse=reverse).numpy()
    want = np.cumsum(x[::-1])[::-1] if reverse else np.cumsum(x)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    got = gj.jit(lambda v: gj.associative_scan(lambda a, b: a * b, v))(x).numpy()
    np.testing.assert_allclose(got, np.cumprod(x), rtol=1e-13)


def test_associative_scan_pytrees_axis_and_gradients():
    """The linear recurrence h[t] = a[t] * h[t-1] + b[t] as a scan over (a, b) pairs."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 1.0, (2, 9)), rng.standard_normal((2, 9))

    def combine(p, q):
        return (p[0] * q[0], q[0] * p[1] + q[1])

    def reference(a, b):
        h, out = np.zeros(a.shape[0]), []
        for t in range(a.shape[1]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        return np.stack(out, 1)
    _, h = gj.associative_scan(combine, (a, b), axis=1)
    np.testing.assert_allclose(h.numpy(), reference(a, b), rtol=1e-12)
    g = gj.grad(lambda v: (gj.associative_scan(combine, (a, v), axis=1)[1] ** 2).sum())(b)
    np.testing.assert_allclose(g.numpy(), _fd(lambda v: (reference(a, v) ** 2).sum(), b),
                               rtol=1e-6)
    batched = gj.vmap(lambda v: gj.associative_scan(lambda p, q: p + q, v))(b).numpy()
    np.testing.assert_allclose(batched, np.cumsum(b, 1), rtol=1e-13)


# ---- unroll --------------------------------------------------------------------------------

@pytest.mark.parametrize("unroll", [2, 3, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_unroll_gives_the_same_values_and_gradients(unroll, reverse):
    xs = np.random.default_rng(1).standard_normal((7, 2))

    def run(v, u):
        def step(c, x):
            c = gj.tanh(c * 0.9 + x)
            return c, c * x
        c, ys = gj.scan(step, np.zeros(2), v, reverse=reverse, unroll=u)
        return (c ** 2).sum() + ys.sum()
    np.testing.assert_allclose(float(run(xs, unroll)), float(run(xs, 1)), rtol=1e-14)
    g = gj.grad(lambda v: run(v, unroll))(xs).numpy()
    np.testing.assert_allclose(g, gj.grad(lambda v: run(v, 1))(xs).numpy(), rtol=1e-12)
    np.testing.assert_allclose(g, _fd(lambda v: float(run(v, 1)), xs), rtol=1e-6)
    fn = gj.make_ir(gj.jit(lambda v: run(v, unroll)))(xs)
    lengths = sorted(op.params["length"] for op in fn.body if op.prim.name == "scan")
    assert lengths == ([] if unroll is True else sorted({2: [3, 1], 3: [2, 1]}[unroll]))


def test_fori_loop_unroll():
    body = lambda i, v: v * 1.5 + gj.sin(v) * i   # noqa: E731
    want = gj.fori_loop(0, 7, body, np.array([0.2, -0.4])).numpy()
    np.testing.assert_allclose(gj.fori_loop(0, 7, body, np.array([0.2, -0.4]), unroll=3).numpy(),
                               want, rtol=1e-14)
    with pytest.raises(ValueError, match="statically known"):
        gj.jit(lambda n: gj.fori_loop(0, n, body, 1.0, unroll=2))(np.int32(3))


# ---- dynamic slices ------------------------------------------------------------------------

def _clamp(s, d, n):
    s = s + d if s < 0 else s
    return min(max(s, 0), d - n)


def _np_dynamic_slice(x, starts, sizes):
    s = [_clamp(a, d, n) for a, d, n in zip(starts, x.shape, sizes)]
    return x[tuple(slice(a, a + n) for a, n in zip(s, sizes))]


def _np_dynamic_update(x, u, starts):
    s = [_clamp(a, d, n) for a, d, n in zip(starts, x.shape, u.shape)]
    out = x.copy()
    out[tuple(slice(a, a + n) for a, n in zip(s, u.shape))] = u
    return out


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 5), st.integers(-7, 7)),
                min_size=1, max_size=3))
def test_dynamic_slice_and_update_match_numpy_with_clamping(dims):
    shape = tuple(d for d, _, _ in dims)
    sizes = tuple(min(n, d) for d, n, _ in dims)
    starts = [s for _, _, s in dims]
    x = np.random.default_rng(len(dims)).standard_normal(shape)
    u = -np.ones(sizes)
    idx = [np.int32(s) for s in starts]
    got = gj.jit(lambda v, *i: gj.dynamic_slice(v, i, sizes))(x, *idx).numpy()
    np.testing.assert_array_equal(got, _np_dynamic_slice(x, starts, sizes))
    np.testing.assert_array_equal(gj.dynamic_slice(x, starts, sizes).numpy(),
                                  _np_dynamic_slice(x, starts, sizes))
    got = gj.jit(lambda v, w, *i: gj.dynamic_update_slice(v, w, i))(x, u, *idx).numpy()
    np.testing.assert_array_equal(got, _np_dynamic_update(x, u, starts))


def test_dynamic_slices_gradients_jvp_and_interpreter(monkeypatch):
    x = np.random.default_rng(2).standard_normal((4, 5))
    u = np.random.default_rng(3).standard_normal((2, 3))
    i, j = np.int32(3), np.int32(-2)

    def loss(v, w):
        y = gj.dynamic_update_slice(v, w * w, (i, j))
        return (gj.sin(gj.dynamic_slice(y, (np.int32(1), j), (3, 4))) ** 2).sum()

    def np_loss(v, w):
        y = _np_dynamic_update(v, w * w, (3, -2))
        return (np.sin(_np_dynamic_slice(y, (1, -2), (3, 4))) ** 2).sum()
    gx, gu = gj.grad(loss, argnums=(0, 1))(x, u)
    np.testing.assert_allclose(gx.numpy(), _fd(lambda v: np_loss(v, u), x), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(gu.numpy(), _fd(lambda w: np_loss(x, w), u), rtol=1e-6,
                               atol=1e-9)
    t = np.random.default_rng(4).standard_normal(x.shape)
    _, tangent = gj.jvp(lambda v: loss(v, u), (x,), (t,))
    np.testing.assert_allclose(float(tangent), (gx.numpy() * t).sum(), rtol=1e-10)
    native = gj.grad(loss)(x, u).numpy()
    monkeypatch.setenv("GRADJIT_BACKEND", "interpret")
    np.testing.assert_allclose(gj.grad(loss)(x, u).numpy(), native, rtol=1e-14)


def test_dynamic_index_in_dim_under_vmap_and_in_dim_forms():
    x = np.arange(20.0).reshape(4, 5)
    idx = np.array([0, 3, 9, -1], np.int32)
    rows = gj.vmap(lambda k: gj.dynamic_index_in_dim(x, k, 0, keepdims=False))(idx).numpy()
    np.testing.assert_array_equal(rows, x[[0, 3, 3, 3]])
    col = gj.dynamic_index_in_dim(x, np.int32(2), axis=1)
    assert col.shape == (4, 1)
    np.testing.assert_array_equal(col.numpy()[:, 0], x[:, 2])
    np.testing.assert_array_equal(gj.dynamic_slice_in_dim(x, np.int32(3), 2, axis=1).numpy(),
                                  x[:, 3:5])
    out = gj.dynamic_update_index_in_dim(x, np.zeros(5), np.int32(1), 0).numpy()
    want = x.copy()
    want[1] = 0
    np.testing.assert_array_equal(out, want)
    out = gj.dynamic_update_slice_in_dim(x, np.zeros((4, 2)), np.int32(4), axis=1).numpy()
    want = x.copy()
    want[:, 3:] = 0
    np.testing.assert_array_equal(out, want)
    with pytest.raises(TypeError, match="start indices must be integer scalars"):
        gj.dynamic_slice(x, (np.float32(1), 0), (1, 1))
    with pytest.raises(TypeError, match="slice sizes"):
        gj.dynamic_slice(x, (0, 0), (5, 1))
