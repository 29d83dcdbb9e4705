"""Convolution and pooling: conv1d/conv2d (stride, padding incl. 'same', dilation, groups,
padding modes), max/avg/adaptive pooling, unfold; against PyTorch 2.13 and finite
differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

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


def _direct_conv2d(x, w, stride, padding, dilation):
    """The definition, summed in float64 (no im2col): out[n,o,i,j] = sum over c, a, b."""
    x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    for a in range(kh):
        for b in range(kw):
            patch = x[:, :, a * dilation[0]:a * dilation[0] + stride[0] * (oh - 1) + 1:stride[0],
                      b * dilation[1]:b * dilation[1] + stride[1] * (ow - 1) + 1:stride[1]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, a, b])
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(3, 7),
       st.integers(3, 7), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2),
       st.integers(1, 2), st.integers(0, 2), st.integers(1, 2), st.integers(0, 10_000))
def test_conv2d_equals_the_direct_sum_for_random_shapes(n, c, o, h, wd, kh, kw, sh, sw, pad,
                                                        dil, seed):
    """The gather-based im2col against the definition, values and (compiled) gradients
    (padding: positions in it gather the zero after each sample)."""
    if h + 2 * pad < dil * (kh - 1) + 1 or wd + 2 * pad < dil * (kw - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, c, h, wd)), rng.standard_normal((o, c, kh, kw))
    g = rng.standard_normal(_direct_conv2d(x, w, (sh, sw), (pad, pad), (dil, dil)).shape)
    xt, wt = gj.tensor(x, requires_grad=True), gj.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, stride=(sh, sw), padding=pad, dilation=dil)
    np.testing.assert_allclose(y.detach().numpy(),
                               _direct_conv2d(x, w, (sh, sw), (pad, pad), (dil, dil)),
                               rtol=1e-10, atol=1e-10)
    (y * gj.tensor(g)).sum().backward()
    # d/dw and d/dx of sum(g * conv(x, w)) by the definition: both linear, so exact sums
    eye_w = np.eye(w.size).reshape((w.size,) + w.shape)
    dw = np.array([np.sum(g * _direct_conv2d(x, e, (sh, sw), (pad, pad), (dil, dil)))
                   for e in eye_w]).reshape(w.shape)
    np.testing.assert_allclose(wt.grad.numpy(), dw, rtol=1e-9, atol=1e-9)
    eye_x = np.eye(x.size).reshape((x.size,) + x.shape)
    dx = np.array([np.sum(g * _direct_conv2d(e, w, (sh, sw), (pad, pad), (dil, dil)))
                   for e in eye_x]).reshape(x.shape)
    np.testing.assert_allclose(xt.grad.numpy(), dx, rtol=1e-9, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9),
       st.integers(1, 3), st.integers(1, 3), st.booleans(), st.integers(0, 10_000))
def test_tiling_pools_equal_numpy_values_and_gradients(n, c, h, wd, kh, kw, use_max, seed):
    """Pools whose windows tile the input (stride == kernel: one reshape, reduced over the
    kernel axes), the rows and columns no window reads dropped: values, and gradients
    (max: to the window's maximum; mean: 1 / window size) against NumPy."""
    if kh > h or kw > wd:
        return
    rng = np.random.default_rng(seed)
    x = rng.permutation(n * c * h * wd).reshape(n, c, h, wd).astype(np.float64)  # no ties
    g = rng.standard_normal((n, c, h // kh, wd // kw))
    oh, ow = h // kh, wd // kw
    tiles = x[:, :, :oh * kh, :ow * kw].reshape(n, c, oh, kh, ow, kw)
    want = tiles.max(axis=(3, 5)) if use_max else tiles.mean(axis=(3, 5))
    if use_max:
        hit = (tiles == want[:, :, :, None, :, None])
    else:
        hit = np.full(tiles.shape, 1.0 / (kh * kw))
    dx = np.zeros_like(x)
    dx[:, :, :oh * kh, :ow * kw] = (hit * g[:, :, :, None, :, None]).reshape(
        n, c, oh * kh, ow * kw)
    xt = gj.tensor(x, requires_grad=True)
    pool = F.max_pool2d if use_max else F.avg_pool2d
    y = pool(xt, (kh, kw))
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12)
    (y * gj.tensor(g)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), dx, rtol=1e-12, atol=1e-12)
    assert y.grad_fn.name() == ("MaxPool2DWithIndicesBackward0" if use_max
                                else "AvgPool2DBackward0")


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 11), st.integers(1, 4),
       st.booleans(), st.booleans(), st.integers(0, 10_000))
def test_tiling_pools_1d_and_unbatched(n, c, length, k, use_max, unbatched, seed):
    """The 1-d tiling pools (kernel axis moved before the window axis) and unbatched
    input: values and gradients against NumPy."""
    if k > length:
        return
    rng = np.random.default_rng(seed)
    x = rng.permutation(n * c * length).reshape(n, c, length).astype(np.float64)
    if unbatched:
        x = x[0]
    o = length // k
    tiles = x[..., :o * k].reshape(x.shape[:-1] + (o, k))
    want = tiles.max(-1) if use_max else tiles.mean(-1)
    g = rng.standard_normal(want.shape)
    hit = (tiles == want[..., None]) if use_max else np.full(tiles.shape, 1.0 / k)
    dx = np.zeros_like(x)
    dx[..., :o * k] = (hit * g[..., None]).reshape(x.shape[:-1] + (o * k,))
    xt = gj.tensor(x, requires_grad=True)
    y = (F.max_pool1d if use_max else F.avg_pool1d)(xt, k)
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12)
    (y * gj.tensor(g)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), dx, rtol=1e-12, atol=1e-12)
