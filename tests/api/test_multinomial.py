"""torch.multinomial: shapes, dtype, frequencies, without-replacement distinctness and
PyTorch 2.13's error texts (recorded with /tmp/torchvenv/bin/python)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj


def test_frequencies_follow_the_weights():
    gj.manual_seed(0)
    draws = gj.multinomial(gj.tensor([1.0, 2.0, 7.0]), 20000, replacement=True).numpy()
    freq = np.bincount(draws, minlength=3) / 20000
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.015)


def test_without_replacement_favours_heavy_categories_and_never_repeats():
    gj.manual_seed(1)
    firsts = [gj.multinomial(gj.tensor([1.0, 9.0]), 2).tolist() for _ in range(400)]
    assert all(sorted(f) == [0, 1] for f in firsts)
    share = np.mean([f[0] == 1 for f in firsts])
    assert 0.83 < share < 0.97                  # P(first = 1) = 0.9


def test_recorded_pytorch_behaviour():
    # torch 2.13: multinomial([1., 0.], 2) == [0, 1]; [0, 0, 3] with replacement -> [2, 2]
    assert gj.multinomial(gj.tensor([1.0, 0.0]), 2).tolist() == [0, 1]
    assert gj.multinomial(gj.tensor([0.0, 0.0, 3.0]), 2, replacement=True).tolist() == [2, 2]
    out = gj.multinomial(gj.tensor([[1.0, 0.0, 3.0]]), 4, replacement=True)
    assert out.dtype == gj.int64 and tuple(out.shape) == (1, 4)


@pytest.mark.parametrize("weights, n, message", [
    ([0.5, -0.1], 1, "probability tensor contains either `inf`, `nan` or element < 0"),
    ([1.0, float("nan")], 1, "probability tensor contains either `inf`, `nan` or element < 0"),
    ([0.0, 0.0], 1, "invalid multinomial distribution (sum of probabilities <= 0)"),
    ([1.0, 2.0], 0, "cannot sample n_sample <= 0 samples"),
    ([1.0, 2.0], 3, "cannot sample n_sample > prob_dist.size(-1) samples without replacement"),
    ([[[1.0]]], 1, "prob_dist must be 1 or 2 dim")])
def test_pytorch_error_texts(weights, n, message):
    with pytest.raises(RuntimeError) as e:
        gj.multinomial(gj.tensor(weights), n)
    assert str(e.value) == message


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 4), cats=st.integers(1, 6), n=st.integers(1, 6),
       replacement=st.booleans(), seed=st.integers(0, 1000))
def test_shapes_and_ranges(rows, cats, n, replacement, seed):
    rng = np.random.default_rng(seed)
    w = rng.random((rows, cats)) + 0.01
    if not replacement and n > cats:
        n = cats
    out = gj.multinomial(gj.tensor(w.astype(np.float32)), n, replacement=replacement).numpy()
    assert out.shape == (rows, n) and out.min() >= 0 and out.max() < cats
    if not replacement:
        assert all(len(set(r)) == n for r in out.tolist())
