"""PyTorch-style autograd semantics of gradjit (docs/api.md section 2), beyond the seed examples.

Every expected number, repr string and error message below was checked against torch 2.13.0
(CPU build) by running the same code with real torch; torch is not needed to run these tests.
Messages are PyTorch's own wording, including where it differs from older releases (for example
"output 0 of Exp" and "The differentiated Tensor at index 1 ...").
"""

import re
import warnings

import numpy as np
import pytest

import gradjit as gj

F = gj.nn.functional

# ---- error messages (torch 2.13.0) -------------------------------------------------------------

NOT_SCALAR = "grad can be implicitly created only for scalar outputs"
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward.")
UNUSED_INPUT = ("The differentiated Tensor at index 1 appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior.")
INPUT_NO_GRAD = "One of the differentiated Tensors does not require grad"
SHAPE_MISMATCH = ("Mismatch in shape: grad_output[0] has a shape of torch.Size([2]) and "
                  "output[0] has a shape of torch.Size([3]).")
INT_REQUIRES_GRAD = "Only Tensors of floating point and complex dtype can require gradients"
INT_REQUIRES_GRAD_ = "only Tensors of floating point dtype can require gradients"
NUMPY_REQUIRES_GRAD = ("Can't call numpy() on Tensor that requires grad. "
                       "Use tensor.detach().numpy() instead.")
INPLACE = ("one of the variables needed for gradient computation has been modified by an "
           "inplace operation: ")
INPLACE_EXP_FULL = (
    INPLACE + "[torch.FloatTensor [3]], which is output 0 of Exp, is at version 1; expected "
    "version 0 instead. Hint: enable anomaly detection to find the operation that failed to "
    "compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")
NON_LEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
    "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
    "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead. See "
    "github.com/pytorch/pytorch/pull/30531 for more information.")


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


def leaf(data, dtype=None):
    return gj.tensor(data, dtype=dtype, requires_grad=True)


# ---- backward: scalar, vector with `gradient`, dot, accumulation --------------------------------

def test_scalar_backward():
    x = leaf(3.0)
    y = x ** 2 + 2 * x
    y.backward()
    assert y.item() == 15.0
    assert x.grad.item() == 8.0


def test_vector_backward_with_gradient_weights_each_output():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).backward(gradient=gj.tensor([0.1, 1.0, 10.0]))
    np.testing.assert_allclose(values(x.grad), [0.2, 4.0, 60.0], rtol=1e-6)


def test_dot_gradients_are_the_other_operand():
    a, b = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    d = gj.dot(a, b)
    assert repr(d) == "tensor(32., grad_fn=<DotBackward0>)"
    d.backward()
    assert a.grad.tolist() == [4.0, 5.0, 6.0]
    assert b.grad.tolist() == [1.0, 2.0, 3.0]


def test_gradients_accumulate_until_zeroed():
    w = leaf([1.0, -1.0])
    for _ in range(3):
        (w * w).sum().backward()
    assert w.grad.tolist() == [6.0, -6.0]
    w.grad.zero_()
    assert w.grad.tolist() == [0.0, 0.0]
    (w * w).sum().backward()
    assert w.grad.tolist() == [2.0, -2.0]


def test_float64_leaf_gets_float64_grad():
    x = leaf([1.0, 2.0], dtype=gj.float64)
    (x * x).sum().backward()
    assert repr(x.grad) == "tensor([2., 4.], dtype=torch.float64)"


# ---- retain_graph and create_graph -------------------------------------------------------------

def test_second_backward_through_saved_values_needs_retain_graph():
    a = leaf([1.0, 2.0])
    loss = (a * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    assert str(info.value) == SECOND_BACKWARD


def test_second_autograd_grad_needs_retain_graph_too():
    a = leaf([1.0, 2.0])
    loss = (a * 2).sum()
    gj.autograd.grad(loss, a)
    with pytest.raises(RuntimeError) as info:
        gj.autograd.grad(loss, a)
    assert str(info.value) == SECOND_BACKWARD


def test_second_backward_without_saved_values_works_and_accumulates():
    c = leaf([1.0, 2.0])
    loss = (c + 2).sum()
    loss.backward()
    loss.backward()
    assert c.grad.tolist() == [2.0, 2.0]


def test_retain_graph_allows_a_second_backward():
    a = leaf([1.0, 2.0])
    loss = (a * a).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert a.grad.tolist() == [4.0, 8.0]


def test_create_graph_gives_second_derivative_of_cube():
    x = leaf(2.0)
    (g,) = gj.autograd.grad(x ** 3, x, create_graph=True)
    assert repr(g) == "tensor(12., grad_fn=<MulBackward0>)"
    (g2,) = gj.autograd.grad(g, x)
    assert repr(g2) == "tensor(12.)"


def test_backward_with_create_graph_makes_a_differentiable_grad():
    x = leaf(2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the grad <-> parameter cycle
        (x ** 3).backward(create_graph=True)
    first = x.grad
    assert first.item() == 12.0 and first.requires_grad
    x.grad = None
    first.backward()
    assert x.grad.item() == 12.0


# ---- autograd.grad -----------------------------------------------------------------------------

def test_autograd_grad_leaves_dot_grad_alone():
    x = leaf([1.0, 2.0])
    (g,) = gj.autograd.grad((x * x).sum(), x)
    assert g.tolist() == [2.0, 4.0]
    assert x.grad is None


def test_autograd_grad_unused_input_is_an_error_unless_allowed():
    x, y = leaf([1.0, 2.0]), leaf([3.0])
    with pytest.raises(RuntimeError) as info:
        gj.autograd.grad((x * 2).sum(), [x, y])
    assert str(info.value) == UNUSED_INPUT
    gx, gy = gj.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gx.tolist() == [2.0, 2.0] and gy is None


def test_autograd_grad_input_that_does_not_require_grad():
    x, y = leaf([1.0, 2.0]), gj.tensor([3.0])
    with pytest.raises(RuntimeError) as info:
        gj.autograd.grad((x * 2).sum(), [x, y])
    assert str(info.value) == INPUT_NO_GRAD


SHAPE_MISMATCH_CALLS = {
    "autograd.grad": lambda x: gj.autograd.grad(x * 2, x, grad_outputs=gj.ones(2)),
    "backward": lambda x: (x * 2).backward(gj.ones(2)),
}


@pytest.mark.parametrize("call", SHAPE_MISMATCH_CALLS.values(), ids=SHAPE_MISMATCH_CALLS.keys())
def test_grad_outputs_shape_mismatch(call):
    with pytest.raises(RuntimeError) as info:
        call(leaf([1.0, 2.0, 3.0]))
    assert str(info.value) == SHAPE_MISMATCH


# ---- errors of backward and of requires_grad ---------------------------------------------------

ERROR_CASES = {
    "non-scalar backward": (lambda: leaf([1.0, 2.0]).mul(2).backward(), NOT_SCALAR),
    "no grad_fn": (lambda: gj.tensor([1.0, 2.0]).sum().backward(), NO_GRAD_FN),
    "detached output": (lambda: (leaf([1.0]) * 2).detach().sum().backward(), NO_GRAD_FN),
    "int tensor requires_grad": (lambda: gj.tensor([1, 2, 3], requires_grad=True),
                                 INT_REQUIRES_GRAD),
    "int tensor requires_grad_()": (lambda: gj.tensor([1, 2, 3]).requires_grad_(),
                                    INT_REQUIRES_GRAD_),
    "numpy() of tensor requiring grad": (lambda: leaf([1.0, 2.0]).numpy(), NUMPY_REQUIRES_GRAD),
}


@pytest.mark.parametrize("case", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_runtime_error_text(case):
    action, message = case
    with pytest.raises(RuntimeError) as info:
        action()
    assert str(info.value) == message


# ---- in-place operations and version counters --------------------------------------------------

LEAF_INPLACE_OPS = {
    "add_": lambda a: a.add_(1),
    "+=": lambda a: a.__iadd__(1),
    "mul_": lambda a: a.mul_(2),
    "sub_": lambda a: a.sub_(1),
    "div_": lambda a: a.div_(2),
    "zero_": lambda a: a.zero_(),
    "copy_": lambda a: a.copy_(gj.ones(2)),
}


@pytest.mark.parametrize("op", LEAF_INPLACE_OPS.values(), ids=LEAF_INPLACE_OPS.keys())
def test_inplace_on_leaf_requiring_grad_is_an_error(op):
    with pytest.raises(RuntimeError) as info:
        op(leaf([1.0, 2.0]))
    assert str(info.value) == LEAF_INPLACE


def test_inplace_on_leaf_is_allowed_under_no_grad():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    with gj.no_grad():
        w -= 0.1 * w.grad
    assert repr(w) == "tensor([0.8000, 1.6000], requires_grad=True)"
    assert w.is_leaf


def test_inplace_on_saved_exp_output_full_message():
    a = leaf([1.0, 2.0, 3.0])
    b = a.exp()
    b.add_(1)
    with pytest.raises(RuntimeError) as info:
        b.sum().backward()
    assert str(info.value) == INPLACE_EXP_FULL


def _sin_input_modified():
    b = leaf([1.0, 2.0, 3.0]) * 2
    c = b.sin()
    b.mul_(3)
    return c.sum()


def _sigmoid_output_modified():
    b = leaf([1.0, 2.0, 3.0]).sigmoid()
    b *= 2
    return b.sum()


def _tanh_output_overwritten():
    b = leaf([[1.0, 2.0], [3.0, 4.0]]).tanh()
    b.copy_(gj.zeros(2, 2))
    return b.sum()


def _exp_output_twice_modified_f64():
    b = leaf([1.0, 2.0, 3.0], dtype=gj.float64).exp()
    b.sub_(1)
    b.div_(2)
    return b.sum()


def _mul_operand_modified():
    x = gj.tensor([3.0, 4.0])
    y = (leaf([1.0, 2.0]) * x).sum()
    x += 1
    return y


def _matmul_operand_modified():
    x = gj.tensor([[3.0, 4.0], [5.0, 6.0]])
    y = (x @ leaf([[1.0, 2.0], [3.0, 4.0]])).sum()
    x.mul_(2)
    return y


SAVED_TENSOR_CASES = {
    "sin input": (_sin_input_modified,
                  "[torch.FloatTensor [3]], which is output 0 of Mul, is at version 1;"),
    "sigmoid output": (_sigmoid_output_modified,
                       "[torch.FloatTensor [3]], which is output 0 of Sigmoid, is at version 1;"),
    "tanh output": (_tanh_output_overwritten,
                    "[torch.FloatTensor [2, 2]], which is output 0 of Tanh, is at version 1;"),
    "exp output, f64, twice": (
        _exp_output_twice_modified_f64,
        "[torch.DoubleTensor [3]], which is output 0 of Exp, is at version 2;"),
    "mul operand": (_mul_operand_modified, "[torch.FloatTensor [2]] is at version 1;"),
    "matmul operand": (_matmul_operand_modified, "[torch.FloatTensor [2, 2]] is at version 1;"),
}


@pytest.mark.parametrize("case", SAVED_TENSOR_CASES.values(), ids=SAVED_TENSOR_CASES.keys())
def test_inplace_on_saved_tensor_is_caught_at_backward(case):
    build_loss, detail = case
    loss = build_loss()
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    assert str(info.value).startswith(INPLACE + detail + " expected version 0 instead.")


INPLACE_ALLOWED = {
    "add after mul (mul saved only its constant)": (lambda x: _add_inplace(x * 2), [2.0, 2.0]),
    "mul after add (add saves nothing)": (lambda x: _mul_inplace(x + 1), [2.0, 2.0]),
}


def _add_inplace(t):
    t += 1
    return t


def _mul_inplace(t):
    t.mul_(2)
    return t


@pytest.mark.parametrize("case", INPLACE_ALLOWED.values(), ids=INPLACE_ALLOWED.keys())
def test_inplace_on_unsaved_tensor_is_fine(case):
    build, grad = case
    x = leaf([1.0, 2.0])
    out = build(x)
    assert type(out.grad_fn).__name__ in ("AddBackward0", "MulBackward0")
    out.sum().backward()
    assert x.grad.tolist() == grad


# ---- repr formats ------------------------------------------------------------------------------

REPR_CASES = [
    (lambda: leaf([1.0, 2.0, 3.0]) * 2, "tensor([2., 4., 6.], grad_fn=<MulBackward0>)"),
    (lambda: leaf([1.0, 2.0, 3.0]), "tensor([1., 2., 3.], requires_grad=True)"),
    (lambda: gj.tensor(12.0), "tensor(12.)"),
    (lambda: leaf(2.5), "tensor(2.5000, requires_grad=True)"),
    (lambda: leaf(2.0) ** 3, "tensor(8., grad_fn=<PowBackward0>)"),
    (lambda: gj.tensor([1.0, 2.0], dtype=gj.float64), "tensor([1., 2.], dtype=torch.float64)"),
    (lambda: leaf([1.0, 2.0], dtype=gj.float64),
     "tensor([1., 2.], dtype=torch.float64, requires_grad=True)"),
    (lambda: leaf([1.5, 2.0], dtype=gj.float64) * 2,
     "tensor([3., 4.], dtype=torch.float64, grad_fn=<MulBackward0>)"),
    (lambda: gj.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
    (lambda: gj.tensor([1, 2], dtype=gj.int32), "tensor([1, 2], dtype=torch.int32)"),
    (lambda: gj.tensor(3), "tensor(3)"),
    (lambda: gj.tensor([True, False]), "tensor([ True, False])"),
    (lambda: gj.tensor([-1.5, 2.25]), "tensor([-1.5000,  2.2500])"),
    (lambda: gj.tensor([-1.5, 2.25]).sum(), "tensor(0.7500)"),
    (lambda: gj.tensor([1, 2]) / 2, "tensor([0.5000, 1.0000])"),
    (lambda: gj.tensor([0.001, 1000.0]), "tensor([1.0000e-03, 1.0000e+03])"),
    (lambda: gj.tensor([[1.0, 2.0], [3.0, 4.0]]), "tensor([[1., 2.],\n        [3., 4.]])"),
    (lambda: gj.tensor([[1.5, -2.0], [3.0, 4.25]]),
     "tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  4.2500]])"),
    (lambda: leaf([1.0, 2.0, 3.0]).sum(), "tensor(6., grad_fn=<SumBackward0>)"),
    (lambda: leaf([1.0, 2.0, 3.0]).mean(), "tensor(2., grad_fn=<MeanBackward0>)"),
]


@pytest.mark.parametrize("make, text", REPR_CASES, ids=[text for _, text in REPR_CASES])
def test_repr(make, text):
    assert repr(make()) == text
    assert str(make()) == text


# ---- grad_fn names, is_leaf and requires_grad propagation --------------------------------------

def _vec():
    return leaf([1.0, 2.0, 3.0])


def _mat():
    return leaf([[1.0, 2.0], [3.0, 4.0]])


GRAD_FN_NAMES = [
    ("MulBackward0", lambda: _vec() * 2), ("AddBackward0", lambda: _vec() + 1),
    ("SubBackward0", lambda: _vec() - 1), ("DivBackward0", lambda: _vec() / 2),
    ("NegBackward0", lambda: -_vec()), ("PowBackward0", lambda: _vec() ** 2),
    ("RsubBackward1", lambda: 1 - _vec()), ("ExpBackward0", lambda: _vec().exp()),
    ("LogBackward0", lambda: _vec().log()), ("TanhBackward0", lambda: _vec().tanh()),
    ("SigmoidBackward0", lambda: _vec().sigmoid()), ("SinBackward0", lambda: _vec().sin()),
    ("CosBackward0", lambda: _vec().cos()), ("SqrtBackward0", lambda: _vec().sqrt()),
    ("AbsBackward0", lambda: _vec().abs()), ("ReluBackward0", lambda: F.relu(_vec())),
    ("SumBackward0", lambda: _vec().sum()), ("SumBackward1", lambda: _mat().sum(dim=0)),
    ("MeanBackward0", lambda: _vec().mean()), ("MaxBackward1", lambda: _vec().max()),
    ("MmBackward0", lambda: _mat() @ _mat()), ("DotBackward0", lambda: gj.dot(_vec(), _vec())),
    ("ViewBackward0", lambda: _vec().reshape(3, 1)), ("TBackward0", lambda: _mat().t()),
    ("PermuteBackward0", lambda: _mat().T), ("TransposeBackward0", lambda: _mat().transpose(0, 1)),
    ("SelectBackward0", lambda: _vec()[0]), ("SliceBackward0", lambda: _vec()[1:]),
    ("UnsqueezeBackward0", lambda: _vec().unsqueeze(0)),
    ("ExpandBackward0", lambda: _vec().expand(2, 3)),
    ("SoftmaxBackward0", lambda: F.softmax(_vec(), dim=0)),
    ("LogSoftmaxBackward0", lambda: F.log_softmax(_vec(), dim=0)),
    ("CatBackward0", lambda: gj.cat([_vec(), _vec()])),
    ("StackBackward0", lambda: gj.stack([_vec(), _vec()])),
    ("MaximumBackward0", lambda: gj.maximum(_vec(), _vec())),
    ("LogsumexpBackward0", lambda: _vec().logsumexp(0)),
    ("MseLossBackward0", lambda: F.mse_loss(_vec(), gj.zeros(3))),
    ("NllLossBackward0", lambda: F.cross_entropy(_mat(), gj.tensor([0, 1]))),
]


@pytest.mark.parametrize("name, make", GRAD_FN_NAMES, ids=[n for n, _ in GRAD_FN_NAMES])
def test_grad_fn_class_name(name, make):
    out = make()
    assert type(out.grad_fn).__name__ == name
    assert out.requires_grad and not out.is_leaf


def test_is_leaf_and_requires_grad_propagation():
    plain, param = gj.tensor([1.0]), leaf([1.0])
    assert plain.is_leaf and param.is_leaf  # requires_grad=False tensors are leaves too
    from_param, from_plain = param * 2, plain * 2
    assert from_param.requires_grad and not from_param.is_leaf
    assert not from_plain.requires_grad and from_plain.is_leaf and from_plain.grad_fn is None
    assert (plain + param).requires_grad
    detached = from_param.detach()
    assert detached.is_leaf and not detached.requires_grad and detached.grad_fn is None
    made = gj.tensor([1.0, 2.0]).requires_grad_()
    assert made.requires_grad and made.is_leaf


def test_detach_stops_the_gradient():
    x = leaf([1.0, 2.0])
    y = x * x
    (y + y.detach()).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


# ---- no_grad, enable_grad, retain_grad ---------------------------------------------------------

def test_no_grad_and_enable_grad_nest():
    x = leaf([1.0, 2.0])
    with gj.no_grad():
        y = x * 2
        with gj.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and type(z.grad_fn).__name__ == "MulBackward0"
    assert (x * 2).requires_grad  # back on after the block


def test_no_grad_as_decorator():
    @gj.no_grad()
    def double(t):
        return t * 2

    out = double(leaf([1.0, 2.0]))
    assert not out.requires_grad and out.tolist() == [2.0, 4.0]


def test_retain_grad_populates_a_non_leaf_grad():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, 12.0]
    assert x.grad.tolist() == [18.0, 36.0]


def test_reading_grad_of_non_leaf_warns():
    h = leaf([1.0, 2.0]) * 2
    with pytest.warns(UserWarning, match=re.escape(NON_LEAF_GRAD_WARNING)):
        assert h.grad is None


# ---- autograd.Function -------------------------------------------------------------------------

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


# ---- optimizers --------------------------------------------------------------------------------

# w after each of 3 steps minimising sum((w - [0.5, 1, -1])**2) from w = [1, -2, 0.5] (torch 2.13.0)
OPTIMIZER_CASES = {
    "SGD": (lambda p: gj.optim.SGD(p, lr=0.1),
            [[0.9, -1.4, 0.2], [0.82, -0.92, -0.04], [0.756, -0.536, -0.232]]),
    "SGD momentum": (lambda p: gj.optim.SGD(p, lr=0.1, momentum=0.9),
                     [[0.9, -1.4, 0.2], [0.73, -0.38, -0.31], [0.531, 0.814, -0.907]]),
    "Adam": (lambda p: gj.optim.Adam(p, lr=0.1),
             [[0.9000000357627869, -1.899999976158142, 0.4000000059604645],
              [0.8011874556541443, -1.800102710723877, 0.30023905634880066],
              [0.7048712968826294, -1.7003815174102783, 0.20090284943580627]]),
}


@pytest.mark.parametrize("case", OPTIMIZER_CASES.values(), ids=OPTIMIZER_CASES.keys())
def test_optimizer_three_steps(case):
    make, trajectory = case
    w = leaf([1.0, -2.0, 0.5])
    target = gj.tensor([0.5, 1.0, -1.0])
    opt = make([w])
    for expected in trajectory:
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
        np.testing.assert_allclose(values(w), expected, rtol=1e-5, atol=1e-6)
    assert w.is_leaf and w.requires_grad


@pytest.mark.parametrize("kwargs, grad", [({}, None), ({"set_to_none": True}, None),
                                          ({"set_to_none": False}, [0.0])])
def test_zero_grad(kwargs, grad):
    w = leaf([1.0])
    opt = gj.optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    opt.zero_grad(**kwargs)
    assert (w.grad.tolist() if w.grad is not None else None) == grad


# ---- nn ----------------------------------------------------------------------------------------

def test_linear_parameters():
    lin = gj.nn.Linear(4, 3)
    shapes = [(name, tuple(p.shape)) for name, p in lin.named_parameters()]
    assert shapes == [("weight", (3, 4)), ("bias", (3,))]
    assert sum(int(np.prod(p.shape)) for p in lin.parameters()) == 15
    assert lin.weight.requires_grad and lin.weight.is_leaf
    assert repr(lin) == "Linear(in_features=4, out_features=3, bias=True)"
    no_bias = gj.nn.Linear(4, 3, bias=False)
    assert len(list(no_bias.parameters())) == 1 and no_bias.bias is None


def test_linear_forward_and_gradients():
    lin = gj.nn.Linear(4, 3)
    x = gj.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 3.0, 1.0]])
    out = lin(x)
    assert tuple(out.shape) == (2, 3) and type(out.grad_fn).__name__ == "AddmmBackward0"
    w, b = values(lin.weight), values(lin.bias)
    np.testing.assert_allclose(values(out), values(x) @ w.T + b, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(values(lin.weight.grad), np.tile(values(x).sum(0), (3, 1)))
    assert lin.bias.grad.tolist() == [2.0, 2.0, 2.0]


LOGITS = [[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]]


def test_cross_entropy_value_and_gradient():
    logits = leaf(LOGITS)
    loss = F.cross_entropy(logits, gj.tensor([1, 2]))
    loss.backward()
    np.testing.assert_allclose(loss.item(), 0.26757151, rtol=1e-6)
    np.testing.assert_allclose(values(logits.grad), [[0.11561194, -0.18573415, 0.07012219],
                                                     [0.02563180, 0.00853209, -0.03416389]],
                               rtol=1e-5, atol=1e-7)


def test_softmax_value_and_gradient():
    logits = leaf(LOGITS)
    probs = F.softmax(logits, dim=1)
    np.testing.assert_allclose(values(probs), [[0.23122390, 0.62853169, 0.14024438],
                                               [0.05126360, 0.01706417, 0.93167222]], rtol=1e-5)
    probs[:, 0].sum().backward()
    np.testing.assert_allclose(values(logits.grad), [[0.17775941, -0.14533155, -0.03242785],
                                                     [0.04863565, -0.00087477, -0.04776087]],
                               rtol=1e-5, atol=1e-7)


def test_log_softmax_value_and_gradient():
    logits = leaf(LOGITS)
    logp = F.log_softmax(logits, dim=1)
    np.testing.assert_allclose(values(logp), [[-1.46436882, -0.46436879, -1.96436882],
                                              [-2.97077441, -4.07077408, -0.07077423]], rtol=1e-5)
    (logp * gj.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])).sum().backward()
    np.testing.assert_allclose(values(logits.grad), [[0.76877612, -0.62853169, -0.14024438],
                                                     [-0.05126359, -0.01706417, 0.06832778]],
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction, loss, grad", [
    ("mean", 1.5, [-1 / 3, 1 / 3, -4 / 3]),
    ("sum", 4.5, [-1.0, 1.0, -4.0]),
])
def test_mse_loss_value_and_gradient(reduction, loss, grad):
    pred = leaf([0.5, 1.5, -1.0])
    out = F.mse_loss(pred, gj.tensor([1.0, 1.0, 1.0]), reduction=reduction)
    out.backward()
    assert out.item() == loss
    np.testing.assert_allclose(values(pred.grad), grad, rtol=1e-6)


# ---- creation and dtypes -----------------------------------------------------------------------

CREATION_CASES = [
    ("zeros(2, 3)", lambda: gj.zeros(2, 3), gj.float32, [[0.0] * 3] * 2),
    ("zeros((2, 3))", lambda: gj.zeros((2, 3)), gj.float32, [[0.0] * 3] * 2),
    ("zeros int32", lambda: gj.zeros(2, dtype=gj.int32), gj.int32, [0, 0]),
    ("ones(3)", lambda: gj.ones(3), gj.float32, [1.0, 1.0, 1.0]),
    ("full float", lambda: gj.full((2,), 7.0), gj.float32, [7.0, 7.0]),
    ("full int", lambda: gj.full((2,), 7), gj.int64, [7, 7]),
    ("arange(5)", lambda: gj.arange(5), gj.int64, [0, 1, 2, 3, 4]),
    ("arange(3.0)", lambda: gj.arange(3.0), gj.float32, [0.0, 1.0, 2.0]),
    ("arange step", lambda: gj.arange(0.0, 1.0, 0.25), gj.float32, [0.0, 0.25, 0.5, 0.75]),
    ("arange dtype", lambda: gj.arange(1, 4, dtype=gj.float32), gj.float32, [1.0, 2.0, 3.0]),
    ("linspace", lambda: gj.linspace(0, 1, 5), gj.float32, [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("linspace neg", lambda: gj.linspace(-1, 1, 3), gj.float32, [-1.0, 0.0, 1.0]),
    ("eye(3)", lambda: gj.eye(3), gj.float32, np.eye(3).tolist()),
    ("eye(2, 3)", lambda: gj.eye(2, 3), gj.float32, np.eye(2, 3).tolist()),
    ("zeros_like int", lambda: gj.zeros_like(gj.tensor([1, 2])), gj.int64, [0, 0]),
    ("ones_like", lambda: gj.ones_like(gj.tensor([1.0, 2.0])), gj.float32, [1.0, 1.0]),
    ("full_like", lambda: gj.full_like(gj.tensor([1.0, 2.0]), 3.5), gj.float32, [3.5, 3.5]),
    ("int data", lambda: gj.tensor([1, 2, 3]), gj.int64, [1, 2, 3]),
    ("float data", lambda: gj.tensor([1.0, 2.0]), gj.float32, [1.0, 2.0]),
    ("mixed data", lambda: gj.tensor([1, 2.5]), gj.float32, [1.0, 2.5]),
    ("scalar", lambda: gj.tensor(1.5), gj.float32, 1.5),
    ("bool data", lambda: gj.tensor([True]), gj.bool, [True]),
    ("explicit f64", lambda: gj.tensor([[1, 2], [3, 4]], dtype=gj.float64), gj.float64,
     [[1.0, 2.0], [3.0, 4.0]]),
]


@pytest.mark.parametrize("make, dtype, data", [c[1:] for c in CREATION_CASES],
                         ids=[c[0] for c in CREATION_CASES])
def test_creation(make, dtype, data):
    t = make()
    assert t.dtype == dtype
    assert t.tolist() == data
    assert tuple(t.shape) == np.shape(data)
    assert t.is_leaf and not t.requires_grad


RANDOM_CASES = {
    "randn": (lambda: gj.randn(2, 3), (2, 3)),
    "rand": (lambda: gj.rand(4), (4,)),
    "randn_like": (lambda: gj.randn_like(gj.zeros(2, 2)), (2, 2)),
}


@pytest.mark.parametrize("case", RANDOM_CASES.values(), ids=RANDOM_CASES.keys())
def test_random_creation_shape_dtype_and_seed(case):
    make, shape = case
    gj.manual_seed(7)
    first = make()
    gj.manual_seed(7)
    again = make()
    assert tuple(first.shape) == shape and first.dtype == gj.float32
    assert first.tolist() == again.tolist()


def test_rand_lies_in_unit_interval():
    u = values(gj.rand(1000))
    assert u.min() >= 0.0 and u.max() < 1.0


def test_default_float_dtype_and_promotion():
    assert gj.tensor([1.0]).dtype == gj.float32 and gj.tensor(0.5).dtype == gj.float32
    assert (gj.tensor([1.0, 2.0]) * gj.tensor([1.0, 2.0], dtype=gj.float64)).dtype == gj.float64
    assert (gj.tensor([1, 2]) * 1.5).dtype == gj.float32
    assert (gj.tensor([1, 2]) + gj.tensor([1.0, 2.0])).dtype == gj.float32


def test_tensor_accessors():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.ndim == 2 and tuple(x.size()) == (2, 3) and x.size(0) == 2
    assert tuple(x.T.shape) == (3, 2)
    assert gj.tensor(2.5).item() == 2.5 and isinstance(gj.tensor(3).item(), int)
    assert x.detach().numpy().dtype == np.float32
    np.testing.assert_array_equal(np.asarray(x.detach()), [[1, 2, 3], [4, 5, 6]])
