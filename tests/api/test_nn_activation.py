"""nn activations (functional and modules): values and gradients equal PyTorch 2.13's
(recorded), finite differences on the reference interpreter, printed layouts."""
import numpy as np
import pytest

import gradjit as gj
from tests.api.nn_check import RECORDED, check_case, names
from tests.api.nn_cases_text import REPRS
from tests.gradcheck import check_grads

F = gj.nn.functional


@pytest.mark.parametrize("name", names("activation"))
def test_matches_pytorch(name):
    check_case(name)


@pytest.mark.parametrize("fn", [
    lambda x: F.gelu(x), lambda x: F.gelu(x, approximate="tanh"), lambda x: F.elu(x, 0.7),
    lambda x: F.mish(x), lambda x: F.selu(x), lambda x: F.logsigmoid(x),
    lambda x: F.softsign(x), lambda x: F.hardswish(x * 4), lambda x: F.glu(x, 0)],
    ids=["gelu", "gelu_tanh", "elu", "mish", "selu", "logsigmoid", "softsign", "hardswish",
         "glu"])
def test_finite_differences(fn):
    x = np.random.default_rng(0).standard_normal((4, 3))
    check_grads(gj.make_ir(fn)(x), [x])


def test_gelu_of_large_inputs_is_finite():
    x = gj.tensor([-40.0, -10.0, 0.0, 10.0, 40.0], requires_grad=True)
    y = F.gelu(x)
    y.sum().backward()
    np.testing.assert_allclose(y.tolist(), [0.0, 0.0, 0.0, 10.0, 40.0], atol=1e-6)
    np.testing.assert_allclose(x.grad.tolist(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)


def test_hardtanh_gradient_is_zero_outside():
    x = gj.tensor([-2.0, -0.5, 0.5, 2.0], requires_grad=True)
    F.hardtanh(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("name", ["GELU", "ELU", "Softplus", "Hardtanh", "Mish", "Unflatten",
                                  "Dropout2d"])
def test_repr(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]
