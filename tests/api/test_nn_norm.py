"""Normalisation layers: LayerNorm, RMSNorm, GroupNorm, BatchNorm1d/2d (running statistics,
momentum, train/eval, track_running_stats), InstanceNorm, normalize; against PyTorch 2.13."""
import numpy as np
import pytest

import gradjit as gj
from tests.api.nn_cases_text import REPRS
from tests.api.nn_check import RECORDED, check_case, check_error, names
from tests.gradcheck import check_grads

nn = gj.nn
F = gj.nn.functional


@pytest.mark.parametrize("name", names("norm"))
def test_matches_pytorch(name):
    check_case(name)


@pytest.mark.parametrize("fn", [
    lambda x, w, b: F.layer_norm(x, (5,), w, b),
    lambda x, w, b: F.rms_norm(x, (5,), w),
    lambda x, w, b: F.group_norm(x.reshape(2, 6, 5)[:, :4], 2, w[:4], b[:4]),
    lambda x, w, b: F.batch_norm(x.reshape(2, 6, 5)[:, :5], None, None, w, b, training=True),
    lambda x, w, b: F.normalize(x, dim=0)],
    ids=["layer_norm", "rms_norm", "group_norm", "batch_norm", "normalize"])
def test_finite_differences(fn):
    r = np.random.default_rng(1)
    x, w, b = r.standard_normal((12, 5)), r.standard_normal(5), r.standard_normal(5)
    check_grads(gj.make_ir(fn)(x, w, b), [x, w, b])


def test_batchnorm_running_stats_and_eval():
    bn = nn.BatchNorm1d(3, momentum=0.25)
    x = gj.tensor(np.random.default_rng(2).standard_normal((8, 3)), dtype=gj.float32)
    xs = np.asarray(x.tolist())
    y = bn(x)
    np.testing.assert_allclose(bn.running_mean.tolist(), 0.25 * xs.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.tolist(), 0.75 + 0.25 * xs.var(0, ddof=1),
                               rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    np.testing.assert_allclose(y.tolist(), (xs - xs.mean(0)) / np.sqrt(xs.var(0) + 1e-5),
                               rtol=1e-4, atol=1e-5)
    bn.eval()
    before = bn.running_mean.tolist()
    z = bn(x)
    assert bn.running_mean.tolist() == before and bn.num_batches_tracked.item() == 1
    rm, rv = np.asarray(bn.running_mean.tolist()), np.asarray(bn.running_var.tolist())
    np.testing.assert_allclose(z.tolist(), (xs - rm) / np.sqrt(rv + 1e-5), rtol=1e-4,
                               atol=1e-5)


def test_batchnorm_state_dict_names():
    assert list(nn.BatchNorm2d(4).state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(nn.BatchNorm2d(4, affine=False, track_running_stats=False).state_dict()) == []
    assert nn.BatchNorm1d(2).num_batches_tracked.dtype == gj.int64


def test_batchnorm_load_state_dict_round_trip():
    a, b = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    a(gj.randn(5, 3))
    b.load_state_dict(a.state_dict())
    assert b.running_mean.tolist() == a.running_mean.tolist()
    assert b.num_batches_tracked.item() == 1


@pytest.mark.parametrize("name", ["batchnorm2d_dim", "batchnorm1d_dim", "batchnorm_one_value",
                                  "groupnorm_divisible", "layer_norm_shape"])
def test_error_texts(name):
    check_error(name)


@pytest.mark.parametrize("name", ["LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm1d",
                                  "BatchNorm2d"])
def test_repr(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]
