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


# ---- repr formats ------------------------------------------------------------------------------


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


# ---- optimizers --------------------------------------------------------------------------------


# ---- nn ----------------------------------------------------------------------------------------


# ---- creation and dtypes -----------------------------------------------------------------------


# ---- hooks, retain_graph, requires_grad through every op -------------------------------------

def test_retained_grad_of_a_non_leaf_is_the_gradient_after_its_hooks():
    # PyTorch >= 2.0 runs retain_grad's hook last, whatever the registration order
    x = gj.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)
    y.retain_grad()
    y.register_hook(lambda g: g + 1)
    (y ** 2).sum().backward()
    np.testing.assert_allclose(values(y.grad), 2 * 3 * np.array([1, 2]) * 10 + 1)
    np.testing.assert_allclose(values(x.grad), 3 * values(y.grad))


def test_autograd_grad_wrt_a_non_leaf_applies_its_hooks():
    x = gj.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)
    (g,) = gj.autograd.grad((y ** 2).sum(), y)
    np.testing.assert_allclose(values(g), 2 * values(y) * 10)
    z = x * 2
    z.retain_grad()
    z.register_hook(lambda g: g * 5)
    (z ** 2).sum().backward(inputs=[z])
    np.testing.assert_allclose(values(z.grad), 2 * values(z) * 5)
    assert x.grad is None


def test_retain_graph_is_needed_only_when_something_was_saved():
    x = gj.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second"):
        y.backward()
    z = (x + 2).sum()                       # AddBackward0 and SumBackward0 save no tensor
    z.backward()
    z.backward()
    np.testing.assert_allclose(values(x.grad), (np.exp([1, 2]) * [2, 3]) + 2)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second"):
        w = (x * 2).sum()                   # the 2 is saved, as a wrapped number tensor
        w.backward()
        w.backward()
    kept = (x.exp() * x).sum()
    kept.backward(retain_graph=True)
    kept.backward()


OPS = [
    lambda x: x + 1, lambda x: x.exp(), lambda x: x.sum(0), lambda x: x.T,
    lambda x: x.view(-1), lambda x: x[0], lambda x: x.max(), lambda x: x.max(1)[0],
    lambda x: gj.where(x > 2, x, 0.0), lambda x: x.mean(1, keepdim=True),
    lambda x: x.clamp(0, 2), lambda x: x @ x, lambda x: gj.cat([x, x]),
    lambda x: gj.stack([x, x]), lambda x: x.softmax(-1), lambda x: x.std(),
    lambda x: x.logsumexp(1), lambda x: x.permute(1, 0), lambda x: x.expand(3, 2, 2),
    lambda x: x[x > 2], lambda x: gj.einsum("ij,jk->ik", x, x), lambda x: x.double(),
    lambda x: x.split(1)[1], lambda x: x.prod(), lambda x: x.abs(), lambda x: x.sigmoid(),
]


@pytest.mark.parametrize("k", range(len(OPS)))
def test_requires_grad_propagates_through_every_op_but_not_under_no_grad(k):
    x = gj.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = OPS[k](x)
    assert out.requires_grad and out.grad_fn is not None and not out.is_leaf
    with gj.no_grad():
        assert not OPS[k](x).requires_grad
    assert not OPS[k](x.detach()).requires_grad
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
