"""gj.eval_shape, gj.ShapeDtypeStruct, gj.linearize, gj.block_until_ready, jit(static_argnames)."""
import numpy as np
import pytest

import gradjit as gj


def test_eval_shape_traces_without_compiling():
    calls = []

    def f(x, y):
        calls.append(1)
        return {"a": x @ y, "b": (x.sum(), y.astype(gj.int32) if hasattr(y, "astype") else y)}
    out = gj.eval_shape(f, gj.ShapeDtypeStruct((3, 4), np.float32),
                        gj.ShapeDtypeStruct((4, 2), gj.float32))
    assert out["a"] == gj.ShapeDtypeStruct((3, 2), np.float32)
    assert out["a"].ndim == 2 and out["a"].size == 6 and out["b"][0].shape == ()
    assert repr(out["a"]) == "ShapeDtypeStruct(shape=(3, 2), dtype=float32)"
    assert len(calls) == 1
    # concrete arrays work too, and a traced function is never run on data
    assert gj.eval_shape(lambda x: x[None] * 2.0, np.ones(5, np.float64)).shape == (1, 5)


def test_linearize_matches_jvp_and_finite_differences():
    x = np.array([0.3, -1.1, 2.0])

    def f(v):
        return gj.sin(v) * v

    y, f_jvp = gj.linearize(f, x)
    np.testing.assert_allclose(y.numpy(), np.sin(x) * x, rtol=1e-14)
    t = np.array([1.0, -2.0, 0.5])
    want = (np.cos(x) * x + np.sin(x)) * t
    np.testing.assert_allclose(f_jvp(t).numpy(), want, rtol=1e-12)
    eps = 1e-6
    fd = (np.sin(x + eps * t) * (x + eps * t) - np.sin(x - eps * t) * (x - eps * t)) / (2 * eps)
    np.testing.assert_allclose(f_jvp(t).numpy(), fd, rtol=1e-7)
    with pytest.raises(TypeError, match="f_jvp expects tangents"):
        f_jvp(t, t)


def test_block_until_ready_returns_its_argument():
    x = gj.jit(lambda v: v * 2.0)(np.ones(3))
    assert gj.block_until_ready(x) is x
    tree = {"a": x}
    assert gj.block_until_ready(tree) is tree


def test_jit_static_argnames_by_keyword_and_position():
    def f(x, n, scale=1.0):
        return x * n * scale if n > 1 else x
    jf = gj.jit(f, static_argnames="n")
    np.testing.assert_array_equal(jf(np.ones(2), n=3).numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(jf(np.ones(2), 3).numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(jf(np.ones(2), n=1).numpy(), [1.0, 1.0])
    assert jf.trace_count == 2                  # n=3 once (keyword or position), n=1 once
    both = gj.jit(f, static_argnums=(1,), static_argnames=("scale",))
    np.testing.assert_array_equal(both(np.ones(2), 2, scale=0.5).numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match="static_argnames 'm' is not a positional parameter"):
        gj.jit(f, static_argnames=("m",))


def test_torch_func_linearize():
    x = np.array([0.5, -0.25])
    out, jvp_fn = gj.func.linearize(gj.exp, x)
    np.testing.assert_allclose(out.numpy(), np.exp(x), rtol=1e-14)
    np.testing.assert_allclose(jvp_fn(np.array([1.0, 2.0])).numpy(), np.exp(x) * [1, 2],
                               rtol=1e-14)
