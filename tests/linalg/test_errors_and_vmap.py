"""gj.linalg's errors as PyTorch words them (recorded.json, from record_torch.py), NaN under
a trace (as JAX), and vmap (the primitives' batching rules) against a Python loop."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

import gradjit as gj
from tests.linalg.cases import CASES, LA, rand

ERRORS = json.loads((Path(__file__).parent / "recorded.json").read_text())["errors"]
F64 = {"dtype": gj.float64}
SING = [[1.0, 2.0], [2.0, 4.0]]
NOT_PD = [[1.0, 2.0], [2.0, 1.0]]
RECT = np.ones((2, 3))

CALLS = {
    "cholesky_not_pd": lambda: LA.cholesky(gj.tensor(NOT_PD, **F64)),
    "cholesky_not_pd_batched": lambda: LA.cholesky(gj.tensor(np.array([np.eye(2), NOT_PD]), **F64)),
    "cholesky_not_square": lambda: LA.cholesky(RECT),
    "inv_singular": lambda: LA.inv(gj.tensor(SING, **F64)),
    "inv_not_square": lambda: LA.inv(RECT),
    "solve_singular": lambda: LA.solve(gj.tensor(SING, **F64), gj.ones(2, **F64)),
    "solve_not_square": lambda: LA.solve(RECT, np.ones(2)),
    "det_not_square": lambda: LA.det(RECT),
    "slogdet_not_square": lambda: LA.slogdet(RECT),
    "eigh_not_square": lambda: LA.eigh(RECT),
    "qr_vector": lambda: LA.qr(gj.ones(3)),
    "svd_vector": lambda: LA.svd(gj.ones(3)),
    "matrix_power_not_square": lambda: LA.matrix_power(RECT, 2),
    "cross_not_3": lambda: LA.cross(gj.ones(2), gj.ones(2)),
    "matrix_norm_vector": lambda: LA.matrix_norm(gj.ones(3)),
    "norm_bad_ord": lambda: LA.matrix_norm(gj.eye(3), ord=3),
    "int_input": lambda: LA.inv(gj.eye(2, dtype=gj.int64)),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_error_text_is_pytorchs(name):
    kind, text = ERRORS[name]
    exc = gj.linalg.LinAlgError if kind == "_LinAlgError" else RuntimeError
    with pytest.raises(exc, match="^" + re.escape(text) + r" \(at .*test_errors_and_vmap"):
        CALLS[name]()


def test_linalg_error_is_a_runtime_error_and_names_the_users_line():
    assert issubclass(gj.linalg.LinAlgError, RuntimeError)
    with pytest.raises(RuntimeError, match=r"test_errors_and_vmap\.py:\d+"):
        LA.cholesky(gj.tensor(NOT_PD, **F64))


def test_traced_failures_give_nan_as_jax_does():
    out = gj.jit(lambda a: (LA.cholesky(a), LA.inv(a), LA.solve(a, a)))(
        gj.tensor(NOT_PD, **F64))
    assert np.isnan(np.asarray(out[0])).all()
    assert np.isfinite(np.asarray(out[1])).all()       # not singular, only not PD
    out = gj.jit(lambda a: (LA.inv(a), LA.det(a)))(gj.tensor(SING, **F64))
    assert not np.isfinite(np.asarray(out[0])).all() and float(out[1]) == 0.0


def test_a_failing_matrix_does_not_spoil_the_rest_of_the_batch():
    out = np.asarray(gj.jit(LA.cholesky)(gj.tensor(np.array([np.eye(2) * 4, NOT_PD]), **F64)))
    np.testing.assert_allclose(out[0], np.eye(2) * 2)
    assert np.isnan(out[1]).all()


VMAPPED = [c for c in CASES if c.name in (
    "solve", "inv", "det", "slogdet", "cholesky", "solve_triangular", "qr", "qr_wide",
    "eigh_values", "eigh_vectors", "svd_tall", "svd_wide", "pinv", "lstsq", "matrix_norm_2",
    "matrix_norm_nuc", "cross")]


@pytest.mark.parametrize("case", VMAPPED, ids=[c.name for c in VMAPPED])
def test_vmap_matches_a_python_loop(case):
    draws = [case.inputs(np.random.default_rng(seed)) for seed in range(3)]
    stacks = [np.stack([d[k] for d in draws]) for k in range(len(draws[0]))]
    got = np.asarray(gj.vmap(case.fn)(*[gj.tensor(s) for s in stacks]))
    want = np.stack([np.asarray(case.fn(*[gj.tensor(s[i]) for s in stacks]))
                     for i in range(stacks[0].shape[0])])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_vmap_with_an_unbatched_operand_and_grad_of_vmap():
    rng = np.random.default_rng(11)
    a, bs = rand(rng, 3, 3) + 3 * np.eye(3), rand(rng, 4, 3, 2)
    got = gj.vmap(LA.solve, in_axes=(None, 0))(gj.tensor(a), gj.tensor(bs))
    np.testing.assert_allclose(np.asarray(got), np.linalg.solve(a, bs), atol=1e-12)
    g = gj.grad(lambda m: gj.vmap(LA.det)(m).sum())(gj.tensor(bs[..., :2, :2]))
    want = np.linalg.det(bs[..., :2, :2])[:, None, None] * np.swapaxes(
        np.linalg.inv(bs[..., :2, :2]), -1, -2)
    np.testing.assert_allclose(np.asarray(g), want, atol=1e-10)
