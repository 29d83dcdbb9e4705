"""Custom autograd.Function: forward under no_grad, the user's backward traced and compiled."""

import numpy as np
import pytest

import gradjit as gj
from tracer.autograd import engine
from tracer.errors import TracerError


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)



def leaf(data, dtype=None):
    return gj.tensor(data, dtype=dtype, requires_grad=True)


class Cube(gj.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g


class ScaleBy(gj.autograd.Function):
    """x * k with a Python number k: backward returns None for the non-tensor argument."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


class TwoOutputs(gj.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, ga, gb):
        return ga * 2 + gb * 3


def test_forward_records_no_nodes_of_its_own():
    y = Cube.apply(leaf([1.0, 2.0]))
    (edge,) = y.grad_fn.next_functions
    assert type(y.grad_fn).__name__ == "CubeBackward"
    assert type(edge[0]).__name__ == "AccumulateGrad"


def test_backward_value():
    x = leaf([1.0, -2.0])
    Cube.apply(x).sum().backward()
    assert x.grad.tolist() == [3.0, 12.0]


def test_non_tensor_argument_and_ctx_attributes():
    x = leaf([1.0, 2.0])
    ScaleBy.apply(x, 5.0).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_two_outputs_with_gradient_on_only_one():
    x = leaf([1.0])
    a, b = TwoOutputs.apply(x)
    assert a.grad_fn is b.grad_fn and (a.output_nr, b.output_nr) == (0, 1)
    b.sum().backward()                 # ga is materialised as zeros
    assert x.grad.tolist() == [3.0]


def test_custom_backward_composes_with_recorded_ops():
    x = leaf(2.0)
    y = Cube.apply(x.sin()).exp()
    y.backward()
    s = np.sin(2.0)
    np.testing.assert_allclose(x.grad.item(), np.exp(s ** 3) * 3 * s ** 2 * np.cos(2.0),
                               rtol=1e-5)


def test_second_derivative_through_a_custom_backward():
    x = leaf(2.0)
    (g,) = gj.autograd.grad(Cube.apply(x), x, create_graph=True)     # 3x^2
    (h,) = gj.autograd.grad(g, x)                                    # 6x
    assert (g.item(), h.item()) == (12.0, 12.0)


def test_custom_backward_is_compiled_into_the_backward_program(monkeypatch):
    """The user's backward runs on symbolic Tensors: its ops land in the one Function."""
    seen = []
    original = engine.run_function
    monkeypatch.setattr(engine, "run_function",
                        lambda fn, arrays: seen.append(fn) or original(fn, arrays))
    x = leaf([1.0, 2.0])
    Cube.apply(x).sum().backward()
    (fn,) = seen
    assert sum(op.prim.name == "mul" for op in fn.body) >= 3


def test_reading_gradient_data_in_backward_is_a_tracer_error():
    class Peek(gj.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            if g.sum() > 0:
                return g
            return -g

    with pytest.raises(TracerError):
        Peek.apply(leaf([1.0])).sum().backward()


def test_wrong_number_of_gradients():
    class Bad(gj.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(RuntimeError, match=r"incorrect number of gradients \(expected 1, got 2\)"):
        Bad.apply(leaf([1.0])).sum().backward()


def test_wrong_gradient_shape():
    class BadShape(gj.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return gj.ones(2) * g

    with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[2\] but "
                                           r"expected shape compatible with \[3\]"):
        BadShape.apply(leaf([1.0, 2.0, 3.0])).backward()


def test_broadcast_gradient_is_summed_to_the_input_shape():
    class Spread(gj.autograd.Function):
        @staticmethod
        def forward(ctx, b):
            return b + gj.zeros(3, 2)

        @staticmethod
        def backward(ctx, g):
            return g               # (3, 2) for an input of shape (2,)

    b = leaf([1.0, 2.0])
    Spread.apply(b).sum().backward()
    assert b.grad.tolist() == [3.0, 3.0]


def test_saved_tensors_are_freed_after_backward():
    x = leaf([1.0])
    y = Cube.apply(x)
    y.sum().backward(retain_graph=False)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        _ = y.grad_fn.ctx.saved_tensors


def test_function_that_saves_nothing_can_backward_twice():
    x = leaf([1.0])
    y = ScaleBy.apply(x, 2.0)
    y.sum().backward()
    y.sum().backward()
    assert x.grad.tolist() == [4.0]


def test_modifying_a_saved_input_in_place_is_caught():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = Cube.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_mark_non_differentiable_output():
    class WithMask(gj.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            mask = (x > 0).float()
            ctx.mark_non_differentiable(mask)
            return x * 2, mask

        @staticmethod
        def backward(ctx, g, g_mask):
            return g * 2

    out, mask = WithMask.apply(leaf([1.0, -1.0]))
    assert out.requires_grad and not mask.requires_grad


def test_returning_an_input_gives_a_new_tensor():
    class Identity(gj.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    x = leaf([1.0])
    y = Identity.apply(x)
    assert y is not x and x.is_leaf and type(y.grad_fn).__name__ == "IdentityBackward"
    y.sum().backward()
    assert x.grad.tolist() == [5.0]


def test_setup_context_style():
    class Square(gj.autograd.Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            (ctx.x,) = inputs

        @staticmethod
        def backward(ctx, g):
            return 2 * ctx.x * g

    x = leaf([3.0])
    Square.apply(x).sum().backward()
    assert x.grad.tolist() == [6.0]


# ---- needs_input_grad and no_grad (torch 2.13.0) ---------------------------------------------

class ScaledSquare(gj.autograd.Function):
    """k * x**2 with hand-written derivatives that record which inputs needed a gradient."""

    needs_seen = None

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x, k)
        return k * x * x

    @staticmethod
    def backward(ctx, g):
        x, k = ctx.saved_tensors
        ScaledSquare.needs_seen = tuple(ctx.needs_input_grad)
        gx = g * 2 * k * x if ctx.needs_input_grad[0] else None
        gk = (g * x * x).sum() if ctx.needs_input_grad[1] else None
        return gx, gk


@pytest.mark.parametrize("k_requires_grad, needs, k_grad", [(False, (True, False), None),
                                                            (True, (True, True), 14.0)])
def test_custom_function_backward(k_requires_grad, needs, k_grad):
    x, k = leaf([1.0, 2.0, 3.0]), gj.tensor(0.5, requires_grad=k_requires_grad)
    y = ScaledSquare.apply(x, k)
    assert repr(y) == "tensor([0.5000, 2.0000, 4.5000], grad_fn=<ScaledSquareBackward>)"
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]
    assert ScaledSquare.needs_seen == needs
    assert (k.grad.item() if k.grad is not None else None) == k_grad


def test_custom_function_under_no_grad_records_nothing():
    with gj.no_grad():
        y = ScaledSquare.apply(leaf([1.0, 2.0, 3.0]), gj.tensor(0.5))
    assert repr(y) == "tensor([0.5000, 2.0000, 4.5000])"


def test_once_differentiable_backward_runs():
    class Triple(gj.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        @gj.autograd.function.once_differentiable
        def backward(ctx, g):
            return g * 3

    x = gj.tensor([1.0, 2.0], requires_grad=True)
    Triple.apply(x).sum().backward()
    np.testing.assert_allclose(values(x.grad), [3.0, 3.0])
