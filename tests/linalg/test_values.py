"""gj.linalg values against np.linalg (batched inputs), imperative and compiled (jit), in
float64 and float32; result names and layouts as PyTorch's."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tests.linalg.cases import CASES, LA, rand, well

IDS = [c.name for c in CASES]


def _run(case, arrays, dtype, compiled):
    fn = gj.jit(case.fn) if compiled else case.fn
    return np.asarray(fn(*[gj.tensor(a.astype(dtype)) for a in arrays]))


@pytest.mark.parametrize("compiled", [False, True], ids=["imperative", "jit"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_matches_numpy_f64(case, compiled):
    arrays = case.inputs(np.random.default_rng(0))
    got = _run(case, arrays, np.float64, compiled)
    np.testing.assert_allclose(got, case.ref(*arrays), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_matches_numpy_f32(case):
    arrays = case.inputs(np.random.default_rng(1))
    got = _run(case, arrays, np.float32, compiled=True)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, case.ref(*arrays), rtol=2e-4, atol=2e-4)


def test_results_unpack_with_pytorch_field_names():
    a = gj.tensor(well(np.random.default_rng(2), 3, 3))
    assert LA.qr(a)._fields == ("Q", "R")
    assert LA.eigh(a + a.mT)._fields == ("eigenvalues", "eigenvectors")
    assert LA.svd(a)._fields == ("U", "S", "Vh")
    assert LA.slogdet(a)._fields == ("sign", "logabsdet")
    assert LA.lstsq(a, a)._fields == ("solution", "residuals", "rank", "singular_values")


def test_decompositions_reconstruct_their_input():
    rng = np.random.default_rng(3)
    for m, n in ((5, 3), (3, 5), (4, 4)):
        a = rand(rng, 2, m, n)
        q, r = (np.asarray(t) for t in LA.qr(gj.tensor(a)))
        np.testing.assert_allclose(q @ r, a, atol=1e-12)
        np.testing.assert_allclose(np.triu(r), r)
        u, s, vh = (np.asarray(t) for t in LA.svd(gj.tensor(a), full_matrices=True))
        assert u.shape == (2, m, m) and vh.shape == (2, n, n)
        for full in (u, np.swapaxes(vh, -1, -2)):       # completed to orthogonal matrices
            np.testing.assert_allclose(np.swapaxes(full, -1, -2) @ full,
                                       np.broadcast_to(np.eye(full.shape[-1]), full.shape),
                                       atol=1e-12)
        k = min(m, n)
        np.testing.assert_allclose((u[..., :k] * s[..., None, :]) @ vh[..., :k, :], a,
                                   atol=1e-12)


def test_singular_matrix_gives_zero_det_and_minus_inf_logabsdet():
    sing = gj.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=gj.float64)
    assert float(LA.det(sing)) == 0.0
    sign, logabsdet = LA.slogdet(sing)
    assert float(sign) == 0.0 and float(logabsdet) == -np.inf


def test_lstsq_residuals_rank_and_singular_values_as_numpy():
    rng = np.random.default_rng(4)
    a, b = rand(rng, 6, 3), rand(rng, 6, 2)
    got = LA.lstsq(gj.tensor(a), gj.tensor(b))
    want = np.linalg.lstsq(a, b, rcond=None)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, atol=1e-12)
    deficient = np.c_[a[:, :2], a[:, :1]]                 # rank 2: residuals are empty
    got = LA.lstsq(gj.tensor(deficient), gj.tensor(b))
    assert int(got.rank) == 2 and got.residuals.shape == (0,)
    np.testing.assert_allclose(np.asarray(got.solution),
                               np.linalg.lstsq(deficient, b, rcond=None)[0], atol=1e-10)


def test_norm_spellings_agree():
    x = gj.tensor(rand(np.random.default_rng(5), 3, 4))
    assert float(LA.norm(x, axis=(0, 1))) == pytest.approx(float(LA.matrix_norm(x)))
    assert np.asarray(LA.norm(x, 1, dim=1, keepdim=True)).shape == (3, 1)
    assert np.asarray(LA.matrix_norm(x, "nuc", keepdim=True)).shape == (1, 1)
    assert np.asarray(LA.matrix_norm(x, float("inf"), keepdim=True)).shape == (1, 1)


def test_eigh_reads_the_chosen_triangle():
    a = rand(np.random.default_rng(6), 4, 4)
    for uplo, tri in (("L", np.tril(a) + np.tril(a, -1).T), ("U", np.triu(a) + np.triu(a, 1).T)):
        got = np.asarray(LA.eigvalsh(gj.tensor(a), UPLO=uplo))
        np.testing.assert_allclose(got, np.linalg.eigvalsh(tri), atol=1e-12)


def test_linalg_is_an_importable_namespace_with_torch_style_missing_names():
    import gradjit.linalg as mod
    assert mod is gj.linalg and mod.solve is gj.linalg.solve
    with pytest.raises(AttributeError, match="gradjit does not implement torch.linalg.matrix_exp"):
        _ = mod.matrix_exp


@settings(max_examples=8, deadline=None)
@given(batch=st.lists(st.integers(1, 3), max_size=2), m=st.integers(1, 5), n=st.integers(1, 5),
       seed=st.integers(0, 2 ** 16))
def test_random_shapes_match_numpy(batch, m, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((*batch, m, n))
    q, r = (np.asarray(t) for t in LA.qr(gj.tensor(a)))
    np.testing.assert_allclose(q @ r, a, atol=1e-11)
    np.testing.assert_allclose(np.asarray(LA.svdvals(gj.tensor(a))),
                               np.linalg.svd(a, compute_uv=False), atol=1e-11)
    sq = rng.standard_normal((*batch, m, m)) + 3 * np.eye(m)
    b = rng.standard_normal((*batch, m, 2))
    np.testing.assert_allclose(np.asarray(LA.solve(gj.tensor(sq), gj.tensor(b))),
                               np.linalg.solve(sq, b), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(float(np.asarray(LA.det(gj.tensor(sq))).sum()),
                               np.linalg.det(sq).sum(), rtol=1e-9, atol=1e-9)
