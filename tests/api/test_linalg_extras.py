"""linalg.matrix_rank, cond, lu_factor, lu_solve, qr(mode="complete") of a tall matrix, the
torch.det/inverse/slogdet spellings and eig/eigvals' NotImplementedError. PyTorch 2.13's
values recorded as constants (float64); gradients also against finite differences and
under jit (the pivots <-> permutation conversion is unrolled IR)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj

A = [[1., 2., 3.], [4., 5., 6.5], [7., 8.5, 10.]]
A_BATCH_2 = (np.array(A).T + np.eye(3)).tolist()
B = [[1., -1.], [2., 0.5], [0., 3.]]
S = [[1., 2., 3.], [2., 4., 6.], [1., 0., 1.]]          # rank 2
TALL = [[1., 2.], [3., 4.], [5., 6.5], [0., 1.]]

# recorded from torch 2.13.0
LU = [[7.0, 8.5, 10.0], [0.14285714285714285, 0.7857142857142858, 1.5714285714285716],
      [0.5714285714285714, 0.18181818181818227, 0.5]]
PIVOTS, PIVOTS_BATCH = [3, 3, 3], [[3, 3, 3], [3, 2, 3]]
SOLVE = [[2.0909090909090904, 0.7272727272727286], [-5.999999999999998, 1.9999999999999967],
         [3.6363636363636354, -1.9090909090909074]]
SOLVE_ADJ = [[2.0909090909090935, 1.8181818181818166], [-6.0, 2.000000000000001],
             [3.272727272727272, -1.5454545454545454]]
SOLVE_RIGHT = [[2.0909090909090935, -6.0, 3.272727272727272],
               [1.8181818181818166, 2.000000000000001, -1.5454545454545454]]
GRAD_A = [[67.59579263711495, -220.99173553719004, 138.54244928625093],
          [-133.19008264462795, 466.90909090909037, -297.4214876033055],
          [65.05184072126212, -232.06611570247904, 148.38767843726504]]
GRAD_B = [[-34.62809917355374, 6.611570247933873], [70.90909090909089, -20.727272727272688],
          [-34.975206611570236, 11.107438016528905]]
COND = {None: 107.42846273051367, 2: 107.42846273051367, -2: 0.009308520056816962,
        "fro": 109.28144345815313, "nuc": 135.43485278255537, math.inf: 204.00000000000006,
        -math.inf: 20.727272727272734, 1: 155.99999999999997, -1: 45.81818181818181}
COND_SINGULAR = {"fro": math.inf, math.inf: math.inf, -math.inf: math.inf, 1: math.inf,
                 -1: math.inf}
COND_GRAD = [[128.60497080855475, -228.3265560037903, 104.06372861745463],
             [-237.1349250622382, 428.3930315251338, -190.14993291976901],
             [117.13283871201703, -202.58301781981174, 96.04318424327255]]
QC_Q = [[-0.16903085094570325, 0.553516059152082, -0.39793727253821265, -0.7118247472616899],
        [-0.50709255283711, 0.011776937428767537, -0.6905493649198338, 0.5156161568558106],
        [-0.8451542547285166, -0.11776937428767686, 0.4939170734595428, -0.1670047446611485],
        [-0.0, 0.8243856200137389, 0.347611027268732, 0.44671570739760214]]
QC_R = [[-5.916079783099615, -7.859934568975204], [0.0, 1.2130245551630732], [0.0, 0.0],
        [0.0, 0.0]]
LU_FACTOR_SINGULAR = ("torch.linalg.lu_factor: U[1,1] is zero and using it on lu_solve would "
                      "result in a division by zero.")


def t(x):
    return gj.tensor(x, dtype=gj.float64)


def test_lu_factor_as_pytorch():
    lu, piv = gj.linalg.lu_factor(t(A))
    np.testing.assert_allclose(lu.numpy(), LU, rtol=1e-14)
    assert piv.dtype == gj.int32 and piv.tolist() == PIVOTS
    assert gj.linalg.lu_factor(t([A, A_BATCH_2])).pivots.tolist() == PIVOTS_BATCH
    with pytest.raises(RuntimeError, match=r"^torch\.linalg\.lu_factor: U\[1,1\] is zero"):
        gj.linalg.lu_factor(gj.zeros(3, 3))


@pytest.mark.parametrize("kwargs, rhs, want", [({}, B, SOLVE), ({"adjoint": True}, B, SOLVE_ADJ),
                                               ({"left": False}, np.array(B).T, SOLVE_RIGHT)])
def test_lu_solve_as_pytorch(kwargs, rhs, want):
    lu, piv = gj.linalg.lu_factor(t(A))
    np.testing.assert_allclose(gj.linalg.lu_solve(lu, piv, t(rhs), **kwargs).numpy(), want,
                               rtol=1e-13)


def _solve_loss(a, b):
    lu, piv = gj.linalg.lu_factor(a)
    return (gj.linalg.lu_solve(lu, piv, b) ** 2).sum()


def test_lu_solve_gradients_as_pytorch_eager_and_jit():
    a, b = t(A).requires_grad_(), t(B).requires_grad_()
    _solve_loss(a, b).backward()
    np.testing.assert_allclose(a.grad.numpy(), GRAD_A, rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), GRAD_B, rtol=1e-12)
    ga, gb = gj.jit(gj.grad(_solve_loss, argnums=(0, 1)))(np.array(A), np.array(B))
    np.testing.assert_allclose(ga.numpy(), GRAD_A, rtol=1e-12)
    np.testing.assert_allclose(gb.numpy(), GRAD_B, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 5), batch=st.sampled_from([(), (2,)]), seed=st.integers(0, 999))
def test_lu_roundtrip_and_finite_differences(n, batch, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=batch + (n, n)) + n * np.eye(n) * rng.choice([-1, 1])
    b = rng.normal(size=batch + (n, 2))
    lu, piv = gj.jit(gj.linalg.lu_factor)(a)
    x = gj.jit(gj.linalg.lu_solve)(lu, piv, b).numpy()
    np.testing.assert_allclose(a @ x, b, atol=1e-10)
    np.testing.assert_array_equal(piv.numpy(), gj.linalg.lu_factor(t(a)).pivots.numpy())
    g = gj.grad(_solve_loss)(a, b).numpy()
    eps, fd = 1e-6, np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        d = np.zeros_like(a)
        d[idx] = eps
        up, down = _solve_loss(t(a + d), t(b)).item(), _solve_loss(t(a - d), t(b)).item()
        fd[idx] = (up - down) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)


def test_matrix_rank_as_pytorch():
    rank = gj.linalg.matrix_rank
    assert rank(t(S)).item() == 2 and rank(t(A)).item() == 3
    assert rank(t(A), atol=1.0).item() == 1 and rank(t(A), rtol=0.1).item() == 1
    a = np.array(A)
    assert rank(t(a @ a.T), hermitian=True).item() == 3
    assert rank(t([A, A_BATCH_2])).tolist() == [3, 3] and rank(t(A)).dtype == gj.int64
    assert gj.jit(rank)(np.array(S)).item() == 2


@pytest.mark.parametrize("p", list(COND), ids=repr)
def test_cond_as_pytorch(p):
    np.testing.assert_allclose(gj.linalg.cond(t(A), p).item(), COND[p], rtol=1e-13)
    if p in COND_SINGULAR:
        assert gj.linalg.cond(t(S), p).item() == math.inf
    elif p in (None, 2):
        assert gj.linalg.cond(t(S), p).item() > 1e15          # PyTorch: 1.59e16
    with pytest.raises(RuntimeError, match="linalg.cond got an invalid norm type: 3"):
        gj.linalg.cond(t(A), 3)


def test_cond_gradient_as_pytorch():
    a = t(A).requires_grad_()
    gj.linalg.cond(a).backward()
    np.testing.assert_allclose(a.grad.numpy(), COND_GRAD, rtol=1e-11)


def test_qr_complete_of_a_tall_matrix_as_pytorch():
    q, r = gj.linalg.qr(t(TALL), mode="complete")
    np.testing.assert_allclose(q.numpy()[:, :2], np.array(QC_Q)[:, :2], atol=1e-14)
    np.testing.assert_allclose(r.numpy(), QC_R, atol=1e-14)
    # the completing columns: an orthonormal basis of the complement, not LAPACK's (differs)
    np.testing.assert_allclose(q.numpy().T @ q.numpy(), np.eye(4), atol=1e-14)
    np.testing.assert_allclose(q.numpy() @ r.numpy(), TALL, atol=1e-14)
    assert np.abs(q.numpy()[:, 2:] - np.array(QC_Q)[:, 2:]).max() > 0.1
    # R and the first columns of Q differentiate as in mode="reduced"
    def f(m, mode):
        q, r = gj.linalg.qr(m, mode=mode)
        return (r[:2] ** 2).sum() + q[:, :2].sum()

    np.testing.assert_allclose(gj.grad(lambda m: f(m, "complete"))(np.array(TALL)).numpy(),
                               gj.grad(lambda m: f(m, "reduced"))(np.array(TALL)).numpy(),
                               rtol=1e-12)


def test_torch_spellings_of_det_inverse_slogdet():
    a = t(A)
    assert gj.det(a).item() == gj.linalg.det(a).item() == a.det().item()
    np.testing.assert_array_equal(gj.inverse(a).numpy(), a.inverse().numpy())
    np.testing.assert_allclose(gj.inverse(a).numpy(), np.linalg.inv(np.array(A)), rtol=1e-12)
    sign, logabs = a.slogdet()
    assert (sign.item(), logabs.item()) == tuple(v.item() for v in gj.slogdet(a))
    assert gj.det(a.requires_grad_()).grad_fn.name() == "LinalgDetBackward0"


# torch 2.13: det's gradient at exactly singular matrices is zero (not the adjugate)
SINGULAR = [[[1., 2.], [2., 4.]], [[0., 0.], [0., 1.]], S,
            [[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]]


@pytest.mark.parametrize("m", SINGULAR, ids=range(len(SINGULAR)))
def test_det_gradient_at_a_singular_matrix_as_pytorch(m):
    a = t(m).requires_grad_()
    d = gj.linalg.det(a)
    d.backward()
    assert d.item() == 0 and not a.grad.numpy().any()
    assert not gj.jit(gj.grad(gj.linalg.det))(np.array(m)).numpy().any()
    # beside a regular matrix in one batch: the regular one keeps its gradient (adj^T)
    both = t(np.stack([np.pad(m, ((0, 3 - len(m)),) * 2), A])).requires_grad_()
    gj.linalg.det(both).sum().backward()
    want = np.linalg.det(np.array(A)) * np.linalg.inv(np.array(A)).T
    np.testing.assert_allclose(both.grad.numpy()[1], want, rtol=1e-12)


@pytest.mark.parametrize("fn", [gj.linalg.eig, gj.linalg.eigvals])
def test_eig_names_the_missing_complex_dtype(fn):
    with pytest.raises(NotImplementedError, match="eigenvalues of a general matrix are complex"):
        fn(t(A))
