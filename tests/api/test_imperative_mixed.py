"""The imperative API inside functional transforms, and compiled functions inside autograd.

Inside @gj.jit / gj.grad the Tensors are symbolic: imperative backward() and
autograd.grad() then do not run anything, they record their backward program into the
enclosing trace, which is compiled as a whole. Expected values come from the plain
functional transforms.
"""

import numpy as np
import pytest

import gradjit as gj
from tracer import pipeline
from tracer.autograd.recording import record_call
from tracer.errors import TracerError

W = np.array([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]], np.float32)
X = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


def model_loss(w, x):
    return (x @ w).tanh().sum()


def test_backward_inside_jit_returns_the_gradient():
    @gj.jit
    def grad_via_backward(w, x):
        w = w.detach().requires_grad_()
        model_loss(w, x).backward()
        return w.grad

    got = grad_via_backward(W, X)
    np.testing.assert_allclose(values(got), values(gj.grad(model_loss)(W, X)), rtol=1e-5)
    assert grad_via_backward.trace_count == 1
    grad_via_backward(W * 2, X)
    assert grad_via_backward.trace_count == 1           # the second call is a cache hit


def test_autograd_grad_inside_gj_grad_gives_second_derivatives():
    def sum_of_first_derivative(x):
        x = x.requires_grad_()
        (d,) = gj.autograd.grad((x ** 3).sum(), x, create_graph=True)   # 3x^2
        return d.sum()

    x0 = np.array([1.0, -2.0, 0.5], np.float32)
    np.testing.assert_allclose(values(gj.grad(sum_of_first_derivative)(x0)), 6 * x0, rtol=1e-6)
    np.testing.assert_allclose(gj.jit(sum_of_first_derivative)(x0).item(),
                               (3 * x0 ** 2).sum(), rtol=1e-6)


def test_make_ir_of_a_function_using_backward_is_one_program():
    def step(w, x):
        w = w.detach().requires_grad_()
        loss = model_loss(w, x)
        loss.backward()
        return loss, w - 0.1 * w.grad

    fn = gj.make_ir(step)(W, X)
    assert len(fn.results) == 2 and any(op.prim.name == "tanh" for op in fn.body)
    loss, new_w = gj.jit(step)(W, X)
    np.testing.assert_allclose(values(new_w), W - 0.1 * values(gj.grad(model_loss)(W, X)),
                               rtol=1e-5)


def test_custom_function_inside_jit():
    class Square(gj.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    @gj.jit
    def f(x):
        x = x.detach().requires_grad_()
        Square.apply(x).sum().backward()
        return x.grad

    np.testing.assert_allclose(values(f(np.array([1.0, 3.0], np.float32))), [2.0, 6.0])


def test_no_grad_inside_jit_records_nothing_for_autograd():
    @gj.jit
    def f(x):
        x = x.detach().requires_grad_()
        with gj.no_grad():
            y = x * 2
        assert not y.requires_grad
        return y

    assert f(np.ones(2, np.float32)).tolist() == [2.0, 2.0]


def test_reading_values_inside_jit_is_a_tracer_error():
    @gj.jit
    def f(x):
        x = x.detach().requires_grad_()
        loss = (x * x).sum()
        loss.backward()
        return x.grad.item()

    with pytest.raises(TracerError):
        f(np.ones(2, np.float32))


def test_optimizer_step_inside_jit_stays_symbolic():
    @gj.jit
    def sgd_step(w, x):
        w = gj.nn.Parameter(w)
        opt = gj.optim.SGD([w], lr=0.1)
        model_loss(w, x).backward()
        opt.step()
        return w

    expected = W - 0.1 * values(gj.grad(model_loss)(W, X))
    np.testing.assert_allclose(values(sgd_step(W, X)), expected, rtol=1e-5)


def test_imperative_grad_of_a_jitted_function_through_record_call():
    """record_call gives a whole compiled Function a node, as a jitted call would use it."""
    w = gj.tensor(W, requires_grad=True)
    x = gj.tensor(X)
    fn = gj.make_ir(model_loss)(W, X)
    (value,) = pipeline.run(fn, [W, X])
    out = gj.tensor(value)
    node = record_call("ModelLoss", fn, [w, x], [out])
    assert type(out.grad_fn).__name__ == "ModelLossBackward0" and out.grad_fn is node
    (out * 2).backward()
    np.testing.assert_allclose(values(w.grad), 2 * values(gj.grad(model_loss)(W, X)),
                               rtol=1e-5)


def test_detach_inside_a_functional_transform_stops_its_gradient():
    # as jax.lax.stop_gradient: x * x.detach() has derivative x.detach(), not 2x
    x0 = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(values(gj.grad(lambda x: (x * x.detach()).sum())(x0)), x0)
    _, tangent = gj.jvp(lambda x: (x * x.detach()).sum(), (x0,), (np.ones(3),))
    np.testing.assert_allclose(values(tangent), x0.sum())


def test_jit_on_tensors_that_require_grad_joins_the_autograd_graph():
    f = gj.jit(lambda x, w: gj.tanh(x * w).sum())
    x = gj.tensor([0.5, -1.0, 2.0], requires_grad=True)
    w = np.array([1.0, 2.0, 3.0], np.float32)
    for _ in range(2):                   # the second call takes the cached path
        x.grad = None
        y = f(x, w)
        assert y.grad_fn is not None
        y.backward()
        t = np.tanh(np.array([0.5, -1.0, 2.0]) * w)
        np.testing.assert_allclose(x.grad.numpy(), (1 - t * t) * w, rtol=1e-5, atol=1e-6)


def test_jitted_function_called_on_tensors_that_require_grad_is_differentiable():
    w = gj.tensor([1.0, 2.0], requires_grad=True)
    f = gj.jit(lambda v: (v * v).sum())
    loss = f(w) + w.sum()
    loss.backward()
    np.testing.assert_allclose(values(w.grad), 2 * np.array([1.0, 2.0]) + 1)


def test_jitted_function_closing_over_parameters_is_differentiable():
    lin = gj.nn.Linear(2, 1)
    f = gj.jit(lambda x: lin(x).sum())
    x = gj.ones(3, 2)
    (f(x) + lin.bias.sum()).backward()
    np.testing.assert_allclose(values(lin.weight.grad), [[3.0, 3.0]])
    np.testing.assert_allclose(values(lin.bias.grad), [4.0])
