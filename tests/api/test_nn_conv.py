"""Convolution and pooling: conv1d/conv2d (stride, padding incl. 'same', dilation, groups,
padding modes), max/avg/adaptive pooling, unfold; against PyTorch 2.13 and finite
differences."""
import numpy as np
import pytest

import gradjit as gj
from tests.api.nn_cases_text import REPRS
from tests.api.nn_check import RECORDED, check_case, check_error, names
from tests.gradcheck import check_grads

nn = gj.nn
F = gj.nn.functional


@pytest.mark.parametrize("name", names("conv"))
def test_matches_pytorch(name):
    check_case(name)


@pytest.mark.parametrize("kw", [{"stride": 2, "padding": 1}, {"groups": 2, "dilation": 2,
                                                             "padding": "same"},
                                {"stride": (1, 2), "padding": (2, 0)}],
                         ids=["stride_pad", "groups_same", "asym"])
def test_conv_finite_differences_on_the_interpreter(kw):
    r = np.random.default_rng(4)
    x, w = r.standard_normal((2, 4, 5, 5)), r.standard_normal((4, 4 // kw.get("groups", 1), 3, 3))
    check_grads(gj.make_ir(lambda x, w: F.conv2d(x, w, **kw))(x, w), [x, w])


def test_conv1d_finite_differences_on_the_interpreter():
    r = np.random.default_rng(5)
    x, w = r.standard_normal((2, 2, 7)), r.standard_normal((3, 2, 3))
    check_grads(gj.make_ir(lambda x, w: F.conv1d(x, w, stride=2, dilation=2))(x, w), [x, w])


def test_pool_finite_differences():
    # imperative float64 gradients against central differences (the pools' divisors are
    # constants, which make_ir would turn into extra parameters)
    x = gj.tensor(np.random.default_rng(3).standard_normal((1, 1, 4, 5)), requires_grad=True)
    assert gj.autograd.gradcheck(
        lambda x: F.max_pool2d(x, 2, 1).sum() + (F.avg_pool2d(x, 3, 1, 1) * x).sum()
        + (F.adaptive_avg_pool2d(x, (3, 2)) ** 2).sum(), (x,))


def test_conv_is_one_matrix_product():
    x, w = np.ones((2, 3, 8, 8)), np.ones((4, 3, 3, 3))
    text = str(gj.make_ir(lambda x, w: F.conv2d(x, w, padding=1))(x, w))
    assert text.count("dot_general") == 1


def test_conv_module_shapes_and_init_bounds():
    conv = nn.Conv2d(3, 16, 3, padding=1)
    assert list(conv.state_dict()) == ["weight", "bias"]
    assert tuple(conv.weight.shape) == (16, 3, 3, 3)
    bound = 1 / np.sqrt(27)
    assert np.abs(np.asarray(conv.weight.tolist())).max() <= bound
    assert np.abs(np.asarray(conv.bias.tolist())).max() <= bound
    assert tuple(conv(gj.randn(2, 3, 32, 32)).shape) == (2, 16, 32, 32)


def test_max_pool_indices_are_int64():
    y, idx = F.max_pool2d(gj.randn(1, 1, 4, 4), 2, return_indices=True)
    assert idx.dtype == gj.int64 and tuple(idx.shape) == (1, 1, 2, 2)


@pytest.mark.parametrize("name", ["conv2d_channels", "conv_same_strided", "conv_groups"])
def test_error_texts(name):
    check_error(name)


@pytest.mark.parametrize("name", ["Conv2d", "Conv2d_opts", "Conv1d", "MaxPool2d", "AvgPool2d",
                                  "AdaptiveAvgPool2d"])
def test_repr(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]
