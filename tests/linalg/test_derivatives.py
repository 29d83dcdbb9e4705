"""gj.linalg derivatives: VJP (grad) and JVP against finite differences in float64, the
imperative backward against grad, and the grad_fn names PyTorch records."""
import json
from pathlib import Path

import numpy as np
import pytest

import gradjit as gj
from tests.linalg.accuracy import jvp_error, vjp_error
from tests.linalg.cases import CASES, LA, spd, well

DIFFERENTIABLE = [c for c in CASES if c.grad]
IDS = [c.name for c in DIFFERENTIABLE]
RECORDED = json.loads((Path(__file__).parent / "recorded.json").read_text())


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=IDS)
def test_vjp_matches_finite_differences(case):
    assert vjp_error(case) < 1e-6


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=IDS)
def test_jvp_matches_finite_differences(case):
    assert jvp_error(case) < 1e-6


@pytest.mark.parametrize("case", DIFFERENTIABLE[::3], ids=IDS[::3])
def test_imperative_backward_equals_grad(case):
    rng = np.random.default_rng(7)
    arrays = case.inputs(rng)
    w = gj.tensor(rng.standard_normal(np.shape(case.ref(*arrays))))
    leaves = [gj.tensor(a, requires_grad=True) for a in arrays]
    (case.fn(*leaves) * w).sum().backward()
    want = gj.grad(lambda *xs: (case.fn(*xs) * w).sum(), argnums=tuple(range(len(arrays))))(
        *[gj.tensor(a) for a in arrays])
    for leaf, g in zip(leaves, want):
        np.testing.assert_allclose(np.asarray(leaf.grad), np.asarray(g), rtol=1e-9, atol=1e-12)


def test_values_only_losses_stay_finite_at_repeated_eigen_and_singular_values():
    eye = gj.tensor(np.eye(3), requires_grad=True)
    LA.eigvalsh(eye).sum().backward()
    np.testing.assert_allclose(np.asarray(eye.grad), np.eye(3), atol=1e-12)
    eye2 = gj.tensor(np.eye(3), requires_grad=True)
    LA.matrix_norm(eye2, "nuc").backward()
    np.testing.assert_allclose(np.asarray(eye2.grad), np.eye(3), atol=1e-12)


def test_second_derivative_of_logdet():
    # d^2/dt^2 log det(A + t B) = -tr((A^-1 B)^2)
    rng = np.random.default_rng(8)
    a, b = spd(rng, 3, 3), rng.standard_normal((3, 3))
    f = lambda t: LA.slogdet(gj.tensor(a) + t * gj.tensor(b)).logabsdet  # noqa: E731
    got = float(gj.grad(gj.grad(f))(gj.tensor(0.0, dtype=gj.float64)))
    m = np.linalg.solve(a, b)
    assert got == pytest.approx(-np.trace(m @ m), rel=1e-8)


@pytest.mark.parametrize("name, call", [
    ("solve", lambda a: LA.solve(a, a)), ("inv", LA.inv), ("det", LA.det),
    ("slogdet", lambda a: LA.slogdet(a)[1]), ("cholesky", lambda a: LA.cholesky(a @ a.mT)),
    ("solve_triangular", lambda a: LA.solve_triangular(a, a, upper=True)),
    ("qr", lambda a: LA.qr(a)[0]), ("eigh", lambda a: LA.eigh(a + a.mT)[0]),
    ("svd", lambda a: LA.svd(a)[1]), ("svdvals", LA.svdvals), ("norm", LA.norm),
    ("vector_norm", LA.vector_norm), ("matrix_norm", LA.matrix_norm), ("pinv", LA.pinv),
    ("lstsq", lambda a: LA.lstsq(a, a).solution), ("cross", lambda a: LA.cross(a, a)),
    ("eigvalsh", lambda a: LA.eigvalsh(a + a.mT)),
])
def test_grad_fn_is_pytorch_node(name, call):
    a = gj.tensor(well(np.random.default_rng(9), 3, 3), requires_grad=True)
    assert type(call(a).grad_fn).__name__ == RECORDED["grad_fn"][name]


def test_full_matrices_svd_differentiates_its_first_columns():
    rng = np.random.default_rng(12)
    a = gj.tensor(rng.standard_normal((5, 3)))
    w = gj.tensor(rng.standard_normal((5, 3)))

    def loss(full):
        return lambda x: (LA.svd(x, full_matrices=full)[0][:, :3].abs() * w).sum()
    got, want = gj.grad(loss(True))(a), gj.grad(loss(False))(a)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-12)
