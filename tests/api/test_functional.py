"""grad, value_and_grad, jit, make_ir, lower, run_ir: the compiler's front door (docs/api.md 1)."""
from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest

import gradjit as gj
from ir.parser import parse
from tests.gradcheck import numeric_grad


def readme_loss(w, x):
    return (gj.tanh(x @ w) ** 2).mean()


def readme_grad_numpy(w, x):
    """The README example's gradient derived by hand: d/dw mean(tanh(xw)^2)."""
    t = np.tanh(x @ w)
    return x.T @ (2 * t * (1 - t ** 2) / t.size)


@pytest.fixture
def wx():
    rng = np.random.default_rng(0)
    return rng.random((8, 3)), rng.random((5, 8))


# ---- the issue-2 example --------------------------------------------------------------------

def test_readme_gradient_matches_finite_differences_and_hand_derivation(wx):
    w, x = wx
    g = np.asarray(gj.grad(readme_loss)(w, x))
    assert g.shape == w.shape and g.dtype == np.float64
    fd = numeric_grad(lambda v: np.mean(np.tanh(x @ v) ** 2), w)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(g, readme_grad_numpy(w, x), rtol=1e-12, atol=1e-14)


def test_readme_example_in_float32(wx):
    w, x = (a.astype(np.float32) for a in wx)
    g = gj.grad(readme_loss)(w, x)
    assert isinstance(g, gj.Tensor) and g.dtype == gj.float32
    np.testing.assert_allclose(np.asarray(g), readme_grad_numpy(*wx), rtol=2e-4, atol=1e-6)


def test_grad_as_decorator_and_make_ir_round_trip(wx):
    @gj.grad
    def loss(w, x):
        return (gj.tanh(x @ w) ** 2).mean()

    w, x = wx
    fn = gj.make_ir(loss)(w, x)
    text = str(fn)
    assert text.startswith("func @loss_grad(%w: f64[8,3], %x: f64[5,8]) -> (f64[8,3])")
    assert "tanh" in text and "dot_general" in text
    again = parse(text)
    assert str(again) == text
    np.testing.assert_allclose(gj.run_ir(again, w, x), readme_grad_numpy(w, x), rtol=1e-12)


def test_make_ir_of_plain_function_is_the_trace(wx):
    fn = gj.make_ir(readme_loss)(*wx)
    assert fn.name == "readme_loss"
    assert [p.name_hint for p in fn.params] == ["w", "x"]
    assert [str(t) for t in fn.result_types] == ["f64[]"]
    assert str(parse(str(fn))) == str(fn)
    assert "test_functional.py:" in str(fn)          # ops carry the user's line


def test_run_ir_converts_and_checks_inputs(wx):
    w, x = wx
    fn = gj.make_ir(readme_loss)(w, x)
    value = gj.run_ir(fn, w.tolist(), x)
    assert isinstance(value, np.ndarray) and value.shape == ()
    np.testing.assert_allclose(value, np.mean(np.tanh(x @ w) ** 2), rtol=1e-12)
    with pytest.raises(TypeError, match="argument 0 has shape"):
        gj.run_ir(fn, w.T, x)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        gj.run_ir(fn, w)


def test_run_ir_returns_a_tuple_for_several_results(wx):
    w, x = wx
    fn = gj.make_ir(gj.value_and_grad(readme_loss))(w, x)
    value, g = gj.run_ir(fn, w, x)
    np.testing.assert_allclose(g, readme_grad_numpy(w, x), rtol=1e-12)
    np.testing.assert_allclose(value, np.mean(np.tanh(x @ w) ** 2), rtol=1e-12)


# ---- grad variants --------------------------------------------------------------------------

def test_value_and_grad_and_argnums_tuple(wx):
    w, x = wx
    value, (gw, gx) = gj.value_and_grad(readme_loss, argnums=(0, 1))(w, x)
    np.testing.assert_allclose(float(value), np.mean(np.tanh(x @ w) ** 2), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gw), readme_grad_numpy(w, x), rtol=1e-12)
    fdx = numeric_grad(lambda v: np.mean(np.tanh(v @ w) ** 2), x)
    np.testing.assert_allclose(np.asarray(gx), fdx, rtol=1e-6, atol=1e-9)
    gw2, gx2 = gj.grad(readme_loss, argnums=(0, -1))(w, x)
    np.testing.assert_allclose(np.asarray(gx2), np.asarray(gx), rtol=1e-12)


def test_has_aux(wx):
    w, x = wx

    def loss(w, x):
        h = gj.tanh(x @ w)
        return (h ** 2).mean(), {"h": h, "n": h.sum()}

    g, aux = gj.grad(loss, has_aux=True)(w, x)
    np.testing.assert_allclose(np.asarray(g), readme_grad_numpy(w, x), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(aux["h"]), np.tanh(x @ w), rtol=1e-12)
    (value, aux2), g2 = gj.value_and_grad(loss, has_aux=True)(w, x)
    np.testing.assert_allclose(float(aux2["n"]), np.tanh(x @ w).sum(), rtol=1e-12)
    np.testing.assert_allclose(float(value), np.mean(np.tanh(x @ w) ** 2), rtol=1e-12)


def test_pytree_arguments_give_pytree_gradients():
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal((4, 3)), "b": [rng.standard_normal(3), 2.0]}
    x = rng.standard_normal((6, 4))

    def loss(p, x):
        return (gj.sigmoid(x @ p["w"] + p["b"][0]) * p["b"][1]).sum()

    g = gj.grad(loss)(params, x)
    assert set(g) == {"w", "b"} and isinstance(g["b"], list) and len(g["b"]) == 2

    def np_loss(w, b0, s):
        return np.sum(s / (1 + np.exp(-(x @ w + b0))))

    w, (b0, s) = params["w"], params["b"]
    np.testing.assert_allclose(np.asarray(g["w"]), numeric_grad(lambda v: np_loss(v, b0, s), w),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(g["b"][0]),
                               numeric_grad(lambda v: np_loss(w, v, s), b0), rtol=1e-6)
    # the Python float was differentiated as an f32 scalar (as JAX's weak float)
    assert g["b"][1].shape == () and g["b"][1].dtype == gj.float32
    np.testing.assert_allclose(float(g["b"][1]), np_loss(w, b0, 1.0), rtol=1e-5)


def test_grad_of_grad_and_third_derivative():
    f = lambda x: gj.sin(x) * x                     # noqa: E731
    x = np.float64(0.7)
    d1 = gj.grad(f)
    d2 = gj.grad(d1)
    d3 = gj.grad(d2)
    np.testing.assert_allclose(float(d1(x)), np.cos(x) * x + np.sin(x), rtol=1e-12)
    np.testing.assert_allclose(float(d2(x)), -np.sin(x) * x + 2 * np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(float(d3(x)), -np.cos(x) * x - 3 * np.sin(x), rtol=1e-12)


def test_grad_of_a_vector_function_of_its_gradient(wx):
    w, x = wx
    g2 = gj.grad(lambda w: (gj.grad(readme_loss)(w, x) ** 2).sum())(w)
    fd = numeric_grad(lambda v: np.sum(readme_grad_numpy(v, x) ** 2), w)
    np.testing.assert_allclose(np.asarray(g2), fd, rtol=1e-5, atol=1e-9)


def test_grad_of_unused_argument_is_zero():
    g = gj.grad(lambda x, y: (x * 3.0).sum(), argnums=(0, 1))(np.ones(3), np.ones(2))
    np.testing.assert_array_equal(np.asarray(g[0]), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(np.asarray(g[1]), [0.0, 0.0])


def test_closure_over_arrays_and_tensors(wx):
    w, x = wx
    xt = gj.tensor(x)
    g = gj.grad(lambda w: (gj.tanh(xt @ w) ** 2).mean())(w)
    np.testing.assert_allclose(np.asarray(g), readme_grad_numpy(w, x), rtol=1e-12)
    g = gj.grad(lambda w: (gj.tanh(gj.tensor(x) @ w) ** 2).mean())(w)
    np.testing.assert_allclose(np.asarray(g), readme_grad_numpy(w, x), rtol=1e-12)


# ---- jit ------------------------------------------------------------------------------------

def test_jit_caches_per_signature():
    traces = []

    @gj.jit
    def f(x, y):
        traces.append(1)
        return gj.exp(x) * y

    x, y = np.linspace(0, 1, 4), np.arange(4.0)
    np.testing.assert_allclose(np.asarray(f(x, y)), np.exp(x) * y, rtol=1e-12)
    f(x + 1, y * 2)
    f(gj.tensor(x), y)                     # a Tensor of the same type: same signature
    assert len(traces) == 1
    f(x.astype(np.float32), y.astype(np.float32))   # new dtype: retrace
    assert len(traces) == 2
    out = f(np.ones((2, 3)), np.ones((2, 3)))       # new shape: retrace
    assert len(traces) == 3 and out.shape == (2, 3)
    assert f.trace_count == 3


def test_jit_static_argnums_and_python_scalars():
    traces = []

    def power(x, n):
        traces.append(n)
        out = x
        for _ in range(n - 1):             # a Python loop over a static int
            out = out * x
        return out

    p = gj.jit(power, static_argnums=1)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.asarray(p(x, 3)), x ** 3)
    np.testing.assert_allclose(np.asarray(p(x, 3)), x ** 3)
    np.testing.assert_allclose(np.asarray(p(x, 4)), x ** 4)
    assert traces == [3, 4]
    scaled = gj.jit(lambda x, s: x * s)       # Python scalars are static too
    np.testing.assert_allclose(np.asarray(scaled(x, 2.5)), x * 2.5)
    np.testing.assert_allclose(np.asarray(scaled(x, 0.5)), x * 0.5)
    assert scaled.trace_count == 2


def test_jit_pytrees_in_and_out_and_kwargs():
    @gj.jit
    def f(d, scale=1.0, *, bias):
        return {"sum": d["a"] + d["b"][0], "pair": (d["a"] * scale, bias - 1)}

    a, b = np.arange(3.0), np.ones(3)
    out = f({"b": [b], "a": a}, 2.0, bias=np.float64(5))
    assert set(out) == {"sum", "pair"} and isinstance(out["pair"], tuple)
    np.testing.assert_allclose(np.asarray(out["sum"]), a + b)
    np.testing.assert_allclose(np.asarray(out["pair"][0]), a * 2)
    assert float(out["pair"][1]) == 4.0


def test_jit_inside_jit_and_grad_of_jit(wx):
    w, x = wx
    inner = gj.jit(readme_loss)
    outer = gj.jit(lambda w, x: inner(w, x) * 2)
    np.testing.assert_allclose(float(outer(w, x)), 2 * np.mean(np.tanh(x @ w) ** 2), rtol=1e-12)
    g = gj.grad(inner)(w, x)
    np.testing.assert_allclose(np.asarray(g), readme_grad_numpy(w, x), rtol=1e-12)
    jg = gj.jit(gj.grad(readme_loss))
    np.testing.assert_allclose(np.asarray(jg(w, x)), readme_grad_numpy(w, x), rtol=1e-12)
    # the outer trace saw plain IR: one function, no call of another
    assert "dot_general" in str(gj.make_ir(outer)(w, x))


def test_jit_returns_inputs_and_constants_without_aliasing():
    f = gj.jit(lambda x: (x, 3.0, np.arange(2)))
    x = np.ones(2)
    same, three, ar = f(x)
    x[0] = 7.0                               # the result must not see the caller's write
    assert np.asarray(same).tolist() == [1.0, 1.0]
    assert float(three) == 3.0 and np.asarray(ar).tolist() == [0, 1]


def test_lower_gives_ir_llvm_and_compiled(wx):
    w, x = (a.astype(np.float32) for a in wx)
    low = gj.jit(gj.grad(readme_loss)).lower(w, x)
    assert str(low.ir).startswith("func @readme_loss_grad(")
    assert "define" in low.llvm_ir
    compiled = low.compile()
    np.testing.assert_allclose(np.asarray(compiled(w, x)), readme_grad_numpy(*wx), rtol=2e-4,
                               atol=1e-6)
    with pytest.raises(TypeError, match="compiled for"):
        compiled(w.astype(np.float64), x)


def test_method_decorated_with_jit():
    class Model:
        def __init__(self, scale):
            self.scale = scale

        def __hash__(self):
            return hash(self.scale)

        @gj.jit
        def apply(self, x):
            return x * self.scale

    np.testing.assert_allclose(np.asarray(Model(3.0).apply(np.ones(2))), [3.0, 3.0])


# ---- arguments: static configs, integer extras, argnums --------------------------------------

Config = collections.namedtuple("Config", "scale power")


@dataclasses.dataclass(frozen=True)
class Act:
    scale: float
    name: str


def test_static_argnums_with_hashable_configs():
    f = gj.jit(lambda x, cfg: (x * cfg.scale) ** cfg.power, static_argnums=1)
    np.testing.assert_allclose(np.asarray(f(np.ones(2), Config(2.0, 3))), [8.0, 8.0])
    np.testing.assert_allclose(np.asarray(f(np.ones(2), Config(3.0, 2))), [9.0, 9.0])
    np.testing.assert_allclose(np.asarray(f(np.ones(2), Config(2.0, 3))), [8.0, 8.0])
    assert f.trace_count == 2
    g = gj.jit(lambda x, a: getattr(gj, a.name)(x * a.scale), static_argnums=(1,))
    np.testing.assert_allclose(np.asarray(g(np.ones(2), Act(2.0, "tanh"))), np.tanh([2.0, 2.0]))
    np.testing.assert_allclose(np.asarray(g(np.ones(2), Act(2.0, "sigmoid"))),
                               1 / (1 + np.exp([-2.0, -2.0])))


def test_static_minus_zero_is_its_own_signature():
    f = gj.jit(lambda x, s: x / s)
    assert f(np.ones(1), 0.0).item() == np.inf
    assert f(np.ones(1), -0.0).item() == -np.inf


def test_static_nan_is_traced_once():
    f = gj.jit(lambda x, s: x * s)
    for _ in range(3):
        f(np.ones(1), float("nan"))
    assert f.trace_count == 1


def test_value_and_grad_with_integer_extra_args_closures_and_scalars():
    x = np.arange(3.0)
    v, g = gj.value_and_grad(lambda x, k: (x ** k).sum())(x, 3)
    assert v.item() == 9.0
    np.testing.assert_allclose(np.asarray(g), 3 * x ** 2)
    v, g = gj.value_and_grad(lambda x, n: (x * n).sum())(x, np.arange(3))
    assert v.item() == 5.0
    np.testing.assert_allclose(np.asarray(g), np.arange(3.0))
    t, a = gj.tensor([1.0, 2.0]), np.array([3.0, 4.0])
    g = gj.grad(lambda x: (x * t * a).sum())(np.ones(2, np.float32))
    assert g.dtype == gj.float32
    np.testing.assert_allclose(np.asarray(g), [3.0, 8.0])
    assert gj.grad(lambda x, s: (x * s).sum(), argnums=1)(np.ones(2), 2.0).item() == 2.0
    assert gj.grad(lambda x: x * 2.0)(1.5).item() == 2.0


def test_argnums_tuples_order_and_negative():
    f = lambda a, b, c: (a * b * c).sum()       # noqa: E731
    a, b, c = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0])
    gc, ga = gj.grad(f, argnums=(2, 0))(a, b, c)
    np.testing.assert_allclose(np.asarray(gc), a * b)
    np.testing.assert_allclose(np.asarray(ga), b * c)
    np.testing.assert_allclose(np.asarray(gj.grad(f, argnums=-1)(a, b, c)), a * b)


def test_random_numbers_drawn_while_tracing_warn_that_they_are_frozen():
    f = gj.jit(lambda x: x + gj.randn(3))
    with pytest.warns(UserWarning, match=r"drawn once, when the function is traced") as rec:
        first = np.asarray(f(np.zeros(3, np.float32)))
    assert rec[0].filename.endswith("test_functional.py")
    np.testing.assert_array_equal(np.asarray(f(np.zeros(3, np.float32))), first)   # frozen
    drop = gj.nn.Dropout(0.5)
    with pytest.warns(UserWarning, match="same dropout mask"):
        gj.jit(lambda x: drop(x))(np.ones(4, np.float32))
    with pytest.warns(UserWarning, match="while tracing"):
        gj.scan(lambda c, x: (c + gj.rand(1).sum(), None), 0.0, np.ones(3))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drop(gj.ones(4))                            # eager: fresh numbers each call, no warning
        gj.randn(2)
