"""Every failure the fuzzer found, as the smallest program that showed it, asserting the
right answer (worked out by hand or by NumPy). Seeds name the fuzz run that found it."""
import numpy as np
import pytest

import gradjit as gj
from tests.fuzz.check import check_program
from tests.fuzz.programs import Program, random_program


def leaf(values):
    return gj.tensor(np.asarray(values, np.float64), requires_grad=True)


# ---- imperative front: control flow recorded no autograd node (found by seeds 2, 9, 18) ---

def test_eager_scan_is_differentiable():
    x = leaf([1.0, 1.0, 1.0])
    c, ys = gj.scan(lambda c, xk: (c + xk, c * xk), x[0] * 0.0 + 1.0, x)
    assert ys.grad_fn is not None and c.requires_grad
    (c + ys.sum()).backward()
    # c = 1 + x0 + x1 + x2, ys = (x0, (1 + x0) x1, (1 + x0 + x1) x2): every partial is 4 at 1
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0, 4.0])


def test_eager_fori_loop_and_cond_are_differentiable():
    x = leaf([1.0, 0.5])
    gj.fori_loop(0, 2, lambda i, c: c * c, x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 64 * np.array([1.0, 0.5]) ** 3)   # (2x)^4
    x = leaf([1.0, 0.5])
    gj.cond(x.sum() > 0, lambda a: a * a, lambda a: a, x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0])


def test_eager_while_loop_in_reverse_mode_is_a_clear_error():
    x = leaf([1.0])
    _, y = gj.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, c[1] * 2.0), (0, x))
    with pytest.raises(TypeError, match="reverse-mode differentiation of while"):
        y.sum().backward()


def test_seed_2_scan_then_where_backward():
    prog = Program(2, "float64", [(3,)], [
        ("binary", [0, 0], {"f": "pow", "swap": False}),
        ("scan", [1], {"f": "exp_tanh"}),
        ("compare_where", [2, 2], {"op": "le"})], outputs=[3])
    report = check_program(prog)
    assert not report.failures, str(report)


# ---- imperative front: x * 2.0 version-checked x (found by seeds 30, 36) -----------------

def test_inplace_update_of_a_tensor_multiplied_by_a_number():
    x = leaf(np.ones((2, 3)))
    y = x.clone()
    t = y[..., ::2]
    t += y[..., ::2] * 2.0          # PyTorch: MulBackward0 saves nothing of y[..., ::2]
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[3.0, 1.0, 3.0], [3.0, 1.0, 3.0]])


def test_inplace_update_of_a_saved_factor_still_raises():
    a = leaf([1.0, 2.0])
    b = a * 1.0
    c = b * a                       # b is saved for a's gradient
    b.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()
    d = leaf([1.0]) * 2.0
    d.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        d.sum().backward()


# ---- a body that closes over a tensor requiring grad (found by seeds 27, 134) -------------

@pytest.mark.parametrize("how", ["fori_loop", "jit"])
def test_gradient_reaches_a_captured_tensor(how):
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    if how == "fori_loop":
        y = gj.fori_loop(0, 1, lambda i, c: c * w, x)
    else:
        y = gj.jit(lambda a: a * w)(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])
    assert w.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])


# ---- a body closing over a computed tensor that requires grad (found by a --fuzz run of the
# fori programs with the imperative backward checked, seeds 27 36 134 280 282 285) -----------

CAPTURE_USERS = {
    "fori_loop": lambda x, w: gj.fori_loop(0, 2, lambda i, c: c * 0.5 + gj.tanh(w), x),
    "jit": lambda x, w: gj.jit(lambda a: a * 0.25 + gj.tanh(w))(x),
    "cond": lambda x, w: gj.cond(True, lambda a: a * 0.25 + gj.tanh(w), lambda a: a, x),
    "scan": lambda x, w: gj.scan(lambda c, xk: (c * 0.5 + gj.tanh(w) * xk, c), x, x)[0],
    "checkpoint": lambda x, w: gj.checkpoint(lambda a: a * 0.25 + gj.tanh(w))(x),
}


def _capture_loss(how, x, a):
    w = a * 3.0 - 1.0            # pending (not computed) when the body reads it
    return CAPTURE_USERS[how](x, w).sum()


@pytest.mark.parametrize("how", sorted(CAPTURE_USERS))
def test_gradient_reaches_the_leaf_behind_a_captured_non_leaf(how):
    a0, x0 = np.array([0.3, -0.2]), np.array([0.5, 1.5])
    a, x = leaf(a0), leaf(x0)
    _capture_loss(how, x, a).backward()
    assert a.grad is not None, "the captured tensor's gradient was dropped"
    eps = 1e-6

    def f(av):
        return _capture_loss(how, gj.tensor(x0), gj.tensor(av)).item()
    fd = [(f(a0 + eps * e) - f(a0 - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(a.grad.numpy(), fd, rtol=1e-6, atol=1e-9)
    # and the functional gradient of the same program agrees
    g = gj.grad(lambda av: _capture_loss(how, gj.tensor(x0), av))(a0)
    np.testing.assert_allclose(g.numpy(), a.grad.numpy(), rtol=1e-12)


def test_a_captured_non_leaf_makes_the_result_require_grad():
    a = leaf([0.3, 0.2])
    w = a * 1.0
    y = gj.fori_loop(0, 1, lambda i, c: c * 2.0 + w, gj.tensor([1.0, 2.0], dtype=gj.float64))
    assert y.requires_grad and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [1.0, 1.0])


@pytest.mark.parametrize("seed", [27, 36, 134, 280, 282, 285])
def test_fuzzed_fori_programs_backward(seed):
    report = check_program(random_program(seed))
    assert not report.failures, str(report)


# ---- the fuzzer's reference: var spelled axis= is NumPy's ddof=0 (seeds 41 64 128 142 401 432)

@pytest.mark.parametrize("seed", [41, 64, 128, 142, 401, 432])
def test_fuzzed_var_with_bessels_correction(seed):
    report = check_program(random_program(seed))
    assert not report.failures, str(report)


def test_var_spellings_default_corrections():
    x = gj.tensor([[0.1], [0.5], [-0.3]])
    # dim= is PyTorch's (ddof 1: 0.16); axis= is NumPy's (ddof 0). NOTE: PyTorch 2.13 reads
    # torch.var(x, axis=0, keepdims=True) as dim=0 too and gives 0.16 (recorded)
    np.testing.assert_allclose(gj.var(x, dim=0, keepdim=True).numpy(), [[0.16]], rtol=1e-6)
    np.testing.assert_allclose(gj.var(x, axis=0, keepdims=True).numpy(), [[0.16 * 2 / 3]],
                               rtol=1e-6)
