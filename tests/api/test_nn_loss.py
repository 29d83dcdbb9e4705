"""Losses: binary_cross_entropy (+ with logits, pos_weight), smooth_l1, huber, kl_div
(log_target, batchmean), as functions and modules, every reduction; against PyTorch 2.13."""
import numpy as np
import pytest

import gradjit as gj
from tests.api.nn_cases_text import REPRS
from tests.api.nn_check import RECORDED, check_case, check_error, names
from tests.gradcheck import check_grads

nn = gj.nn
F = gj.nn.functional


@pytest.mark.parametrize("name", names("loss"))
def test_matches_pytorch(name):
    check_case(name)


@pytest.mark.parametrize("fn", [
    lambda x, y: F.binary_cross_entropy(F.sigmoid(x), y),
    lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="sum"),
    lambda x, y: F.smooth_l1_loss(x, y, beta=0.5),
    lambda x, y: F.huber_loss(x, y, reduction="none", delta=0.7),
    lambda x, y: F.kl_div(F.log_softmax(x, 1), F.softmax(y, 1), reduction="batchmean"),
    lambda x, y: F.kl_div(x, y, reduction="batchmean", log_target=True)],
    ids=["bce", "bce_logits", "smooth_l1", "huber", "kl_div", "kl_div_log_target"])
def test_finite_differences(fn):
    r = np.random.default_rng(9)
    x, y = r.standard_normal((3, 4)) * 2, r.uniform(0.1, 0.9, (3, 4))
    check_grads(gj.make_ir(fn)(x, y), [x, y])


def test_bce_with_logits_is_stable_for_large_logits():
    x = gj.tensor([-200.0, 200.0, 0.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, gj.tensor([1.0, 0.0, 1.0]), reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.tolist(), [200.0, 200.0, np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(x.grad.tolist(), [-1.0, 1.0, -0.5], rtol=1e-6)


def test_bce_clamps_log_at_minus_100():
    loss = F.binary_cross_entropy(gj.tensor([0.0, 1.0]), gj.tensor([1.0, 0.0]),
                                  reduction="none")
    assert loss.tolist() == [100.0, 100.0]


@pytest.mark.parametrize("name", ["bce_size", "reduction"])
def test_error_texts(name):
    check_error(name)


@pytest.mark.parametrize("name", ["BCEWithLogitsLoss", "HuberLoss"])
def test_repr(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]
