"""The op-by-op tier's data moves (tracer/bounded.py _move) keep each value's shape: a
reshape to a 0-d value stayed 1-d (NumPy's ascontiguousarray returns ndim >= 1), and the
next op's program refused the argument (char_rnn_classification's confusion matrix, read
after 10,000 evaluations)."""
import numpy as np
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tracer import bounded
from tracer.run_programs import run_function


def test_a_move_to_a_0d_value_stays_0d_and_the_next_op_reads_it():
    x = gj.tensor([[2.5]], dtype=gj.float64)
    y = (x * 3).reshape(()) + 1                      # reshape: a move done by NumPy
    reads = bounded.STATS["reads"]
    bounded.compute_in_pieces([y._expr], run_function)
    assert bounded.STATS["reads"] == reads + 1
    assert y._expr.data.shape == () and y.item() == 8.5


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=3), st.integers(0, 2**31 - 1))
def test_moves_in_pieces_equal_numpy_for_any_shape(shape, seed):
    data = np.random.default_rng(seed).normal(size=shape)
    x = gj.tensor(data)
    flat = x.reshape(-1)
    y = (flat.reshape(tuple(shape)).t() if len(shape) == 2 else flat.reshape(tuple(shape)))
    z = y * 2 + y.sum()
    bounded.compute_in_pieces([z._expr], run_function)
    want = (data.T if len(shape) == 2 else data) * 2 + data.sum()
    assert z._expr.data.shape == want.shape
    np.testing.assert_allclose(z.numpy(), want, rtol=1e-12, atol=1e-12)
