"""Edge inputs of the hand-addressed kernels (sort, cumulative, LAPACK) with
GRADJIT_BOUNDS_CHECK on and off: empty rows and matrices, radix-sorted rows with NaN and
signed zeros, singular and non-finite matrices. Both modes give the same values or the same
error class, and never a BoundsError (the kernels stay inside their buffers)."""
import numpy as np
import pytest

import gradjit as torch
from runtime import BoundsError
from tests.api.test_hostile_inputs import _bounds_check

NAN = float("nan")
CASES = {
    "sort empty": lambda: torch.sort(torch.zeros(0))[0],
    "sort radix": lambda: torch.sort(torch.arange(300.).flip(0))[0],
    "sort radix nan": lambda: torch.sort(torch.tensor([NAN, -0.0, 0.0, 1.0] * 80),
                                         descending=True)[1],
    "argsort no columns": lambda: torch.argsort(torch.zeros(2, 0), dim=1),
    "cumsum empty": lambda: torch.cumsum(torch.zeros(0, 3), 0),
    "cummax no columns": lambda: torch.cummax(torch.zeros(3, 0), 1)[1],
    "cholesky empty": lambda: torch.linalg.cholesky(torch.zeros(0, 0)),
    "cholesky not pd": lambda: torch.linalg.cholesky(-torch.eye(3)),
    "qr no rows": lambda: torch.linalg.qr(torch.zeros(0, 3))[1],
    "qr no columns": lambda: torch.linalg.qr(torch.zeros(3, 0))[0],
    "svd no columns": lambda: torch.linalg.svd(torch.zeros(3, 0), full_matrices=False)[1],
    "eigh nan": lambda: torch.linalg.eigh(torch.full((2, 2), NAN))[0],
    "lu_factor singular": lambda: torch.linalg.lu_factor(torch.zeros(3, 3))[1],
    "solve_triangular singular": lambda: torch.linalg.solve_triangular(
        torch.zeros(2, 2), torch.ones(2, 1), upper=True),
    "det empty": lambda: torch.linalg.det(torch.zeros(0, 0)),
    "inv singular": lambda: torch.linalg.inv(torch.zeros(2, 2)),
}


def _outcome(make):
    try:
        return np.asarray(make(), np.float64)
    except Exception as e:          # noqa: BLE001 (the class is what is compared)
        return type(e)


@pytest.mark.parametrize("name", sorted(CASES))
def test_edge_inputs_are_the_same_with_bounds_checks(name):
    with _bounds_check(False):
        plain = _outcome(CASES[name])
    with _bounds_check(True):
        checked = _outcome(CASES[name])
    if isinstance(plain, type):
        assert checked is plain and not issubclass(plain, BoundsError)
        return
    assert not isinstance(checked, type), checked
    np.testing.assert_array_equal(checked, plain)


def test_the_radix_rows_are_numpys_order():
    with _bounds_check(True):
        got = np.asarray(CASES["sort radix"]())
        order = np.asarray(CASES["sort radix nan"]())
    np.testing.assert_array_equal(got, np.arange(300.))
    # descending, stable: the NaNs first, then 1.0, then the zeros in their order
    values = np.array([NAN, -0.0, 0.0, 1.0] * 80)
    assert np.isnan(values[order[:80]]).all() and (values[order[80:160]] == 1.0).all()
    np.testing.assert_array_equal(order[160:], np.sort(np.r_[np.arange(1, 320, 4),
                                                             np.arange(2, 320, 4)]))
