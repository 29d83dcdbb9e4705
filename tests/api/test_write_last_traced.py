"""tracer/ops/write_last.py under the functional transforms: an overwritten value that is
not finite gets its position's gradient with a traced index too (jit), as with a concrete
one (the imperative cases, with PyTorch's values: test_compat_fixes2.py)."""
import numpy as np
import pytest

import gradjit as gj

WEIGHTS = np.array([5.0, 7.0, 11.0])


def _loss(x, i, s):
    return (x.scatter(0, i, s) * gj.tensor(WEIGHTS)).sum()


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_traced_and_concrete_index_give_an_overwritten_non_finite_value_its_gradient(bad):
    v = np.array([bad, 2.0, 3.0])
    index = np.array([1, 1, 0])
    concrete = gj.grad(_loss, argnums=(0, 2))(np.zeros(3), gj.tensor(index), v)
    traced = gj.jit(gj.grad(_loss, argnums=(0, 2)))(np.zeros(3), index, v)
    for got in (concrete, traced):
        np.testing.assert_array_equal(np.asarray(got[0]), [0.0, 0.0, 11.0])
        np.testing.assert_array_equal(np.asarray(got[1]), [7.0, 7.0, 5.0])
    assert float(gj.jit(_loss)(np.zeros(3), index, v)) == 3.0 * 5.0 + 2.0 * 7.0


def test_the_silent_term_is_negative_zero_bit_for_bit():
    """A write of -0.0 over a repeated position stays -0.0 (the sum starts from -0.0)."""
    y = gj.zeros(3).scatter(0, gj.tensor([1, 1]), gj.tensor([np.inf, -0.0]))
    assert np.signbit(y.numpy()).tolist() == [False, True, False]
