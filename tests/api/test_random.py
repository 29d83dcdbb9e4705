"""gj.random: Threefry-2x32 keys as values, emitted as IR (tracer/random).

Bits are checked against Random123's known-answer vectors, against values JAX documents
for its original (non-partitionable) split, and against a NumPy reference of JAX's
partitionable derivation written here from its definition; distributions are checked by
moments and Kolmogorov-Smirnov distances with fixed keys (deterministic); compiled code
against the interpreter, bit for bit.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from ir.core import ShapeError
from ir.interpret import interpret
from tracer.ops.operands import to_tensor
from tracer.random.keys import threefry2x32

U32 = np.uint32
MASK = 0xFFFFFFFF


# ---- a NumPy reference of Threefry-2x32 and JAX's partitionable derivation ----------------

def np_threefry(key, c0, c1):
    """Random123's threefry2x32_20 on uint32 arrays."""
    def rotl(v, r):
        return (v << U32(r)) | (v >> U32(32 - r))
    k0, k1 = U32(key[0]), U32(key[1])
    ks = [k0, k1, k0 ^ k1 ^ U32(0x1BD11BDA)]
    x0, x1 = np.asarray(c0, U32) + ks[0], np.asarray(c1, U32) + ks[1]
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    with np.errstate(over="ignore"):
        for block in range(5):
            for r in rotations[block % 2]:
                x0 = x0 + x1
                x1 = rotl(x1, r) ^ x0
            x0 = x0 + ks[(block + 1) % 3]
            x1 = x1 + ks[(block + 2) % 3] + U32(block + 1)
    return x0, x1


def np_bits32(key, shape):
    n = math.prod(shape)
    b0, b1 = np_threefry(key, np.zeros(n, U32), np.arange(n, dtype=U32))
    return (b0 ^ b1).reshape(shape)


def np_uniform32(key, shape, lo=0.0, hi=1.0):
    bits = np_bits32(key, shape)
    f = ((bits >> U32(9)) | U32(0x3F800000)).view(np.float32) - np.float32(1)
    return np.maximum(np.float32(lo), f * (np.float32(hi) - np.float32(lo)) + np.float32(lo))


def np_uniform64(key, shape):
    n = math.prod(shape)
    b0, b1 = np_threefry(key, np.zeros(n, U32), np.arange(n, dtype=U32))
    bits = (b0.astype(np.uint64) << np.uint64(32)) | b1.astype(np.uint64)
    f = ((bits >> np.uint64(12)) | np.uint64(0x3FF0000000000000)).view(np.float64) - 1.0
    return f.reshape(shape)


def words(key) -> np.ndarray:
    return np.asarray(key).view(U32)


# ---- the bits -----------------------------------------------------------------------------

# Random123's kat_vectors for threefry2x32, 20 rounds: (counter, key) -> output
KAT = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
       ((MASK, MASK), (MASK, MASK), (0x1CB996FC, 0xBB002BE7)),
       ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0))]


def _t(v):
    return to_tensor(np.array(v, U32).view(np.int32))


@pytest.mark.parametrize("counter,key,want", KAT)
def test_threefry_matches_random123_known_answers(counter, key, want):
    out = threefry2x32(_t(key[0]), _t(key[1]), _t(counter[0]), _t(counter[1]))
    assert [int(words(o)) for o in out] == list(want)
    assert [int(w[0]) for w in np_threefry(key, [counter[0]], [counter[1]])] == list(want)


# jax.random.split(PRNGKey(seed)) before JAX 0.5 (jax_threefry_partitionable=False), as
# JAX's documentation prints it: threefry(key, counters 0..3) split into two halves
JAX_ORIGINAL_SPLIT = {0: [[4146024105, 967050713], [2718843009, 1272950319]],
                      42: [[2465931498, 3679230171], [255383827, 267815257]]}


@pytest.mark.parametrize("seed", sorted(JAX_ORIGINAL_SPLIT))
def test_keys_and_threefry_give_jax_documented_original_split(seed):
    k = gj.random.PRNGKey(seed)
    assert words(k).tolist() == [0, seed]
    k0, k1 = (to_tensor(np.array(np.asarray(k)[i])) for i in (0, 1))
    x0, x1 = threefry2x32(k0, k1, _t([0, 1]), _t([2, 3]))
    got = np.concatenate([words(x0), words(x1)]).reshape(2, 2)
    assert got.tolist() == JAX_ORIGINAL_SPLIT[seed]


@pytest.mark.parametrize("seed,want", [(0, [0, 0]), (7, [0, 7]), (-1, [0, MASK]),
                                       (2**40 + 5, [256, 5]), (2**63, [2**31, 0])])
def test_key_words_of_a_seed(seed, want):
    assert words(gj.random.key(seed)).tolist() == want


def test_split_and_fold_in_follow_the_partitionable_derivation():
    key = gj.random.key(1234)
    kw = words(key)
    keys = words(gj.random.split(key, 5))
    b0, b1 = np_threefry(kw, np.zeros(5, U32), np.arange(5, dtype=U32))
    np.testing.assert_array_equal(keys, np.stack([b0, b1], 1))
    for i in range(5):
        np.testing.assert_array_equal(words(gj.random.fold_in(key, i)), keys[i])
    assert gj.random.split(key, (2, 3)).shape == (2, 3, 2)


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5)])
def test_uniform_bits_equal_the_reference(shape):
    key = gj.random.key(99)
    np.testing.assert_array_equal(gj.random.uniform(key, shape).numpy(),
                                  np_uniform32(words(key), shape))
    np.testing.assert_array_equal(gj.random.uniform(key, shape, gj.float64).numpy(),
                                  np_uniform64(words(key), shape))
    # u * (maxval - minval) + minval: native code may fuse it into one FMA (one rounding)
    np.testing.assert_allclose(gj.random.uniform(key, shape, minval=-2.0, maxval=3.0),
                               np_uniform32(words(key), shape, -2.0, 3.0), rtol=2.5e-7)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=0, max_size=3), st.integers(0, 2**32 - 1))
def test_uniform_of_any_shape_and_seed_equals_the_reference(shape, seed):
    key = gj.random.key(seed)
    got = gj.random.uniform(key, tuple(shape)).numpy()
    assert got.shape == tuple(shape) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np_uniform32(words(key), tuple(shape)))


def test_a_uint32_key_array_is_read_as_its_bits():
    jax_style = np.array([0, 42], U32)
    np.testing.assert_array_equal(gj.random.uniform(jax_style, (3,)).numpy(),
                                  gj.random.uniform(gj.random.key(42), (3,)).numpy())


# ---- distributions: moments and Kolmogorov-Smirnov distances, fixed keys ----------------

N = 20000
KS_999 = 1.95 / math.sqrt(N)       # the 99.9% critical value of the KS distance


def ks_distance(samples, cdf) -> float:
    x = np.sort(np.asarray(samples, np.float64))
    f = np.array([cdf(v) for v in x])
    n = len(x)
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


def normal_cdf(v):
    return 0.5 * (1 + math.erf(v / math.sqrt(2)))


@pytest.mark.parametrize("dtype", [gj.float32, gj.float64])
def test_uniform_and_normal_have_their_distributions(dtype):
    key = gj.random.key(5)
    u = gj.random.uniform(key, (N,), dtype, minval=-1.0, maxval=3.0).numpy()
    assert u.dtype == (np.float32 if dtype is gj.float32 else np.float64)
    assert u.min() >= -1.0 and u.max() < 3.0
    assert ks_distance(u, lambda v: (v + 1) / 4) < KS_999
    z = gj.random.normal(gj.random.fold_in(key, 1), (N,), dtype).numpy()
    assert abs(z.mean()) < 4 / math.sqrt(N) and abs(z.var() - 1) < 0.05
    assert ks_distance(z, normal_cdf) < KS_999


def test_truncated_normal_stays_inside_and_has_the_truncated_distribution():
    lo, hi = -1.0, 2.0
    z = gj.random.truncated_normal(gj.random.key(3), lo, hi, (N,)).numpy()
    assert z.min() > lo and z.max() < hi
    mass = normal_cdf(hi) - normal_cdf(lo)
    assert ks_distance(z, lambda v: (normal_cdf(v) - normal_cdf(lo)) / mass) < KS_999
    # bounds broadcast: per-column intervals
    z = gj.random.truncated_normal(gj.random.key(4), np.array([0.0, -3.0]),
                                   np.array([0.5, -2.5]), (100, 2)).numpy()
    assert (z[:, 0] > 0).all() and (z[:, 0] < 0.5).all() and (z[:, 1] < -2.5).all()


def test_gumbel_has_its_mean_and_distribution():
    g = gj.random.gumbel(gj.random.key(8), (N,)).numpy()
    assert abs(g.mean() - 0.5772156649) < 0.03
    assert ks_distance(g, lambda v: math.exp(-math.exp(-v))) < KS_999


def test_bernoulli_frequency_and_broadcast_probabilities():
    b = gj.random.bernoulli(gj.random.key(1), 0.3, (N,)).numpy()
    assert b.dtype == np.bool_ and abs(b.mean() - 0.3) < 4 * math.sqrt(0.21 / N)
    p = np.array([0.0, 1.0, 0.5])
    m = gj.random.bernoulli(gj.random.key(2), p, (1000, 3)).numpy()
    assert not m[:, 0].any() and m[:, 1].all() and abs(m[:, 2].mean() - 0.5) < 0.06


def _chi2_ok(counts, probs) -> bool:
    """Pearson's statistic below its 99.9% point (Wilson-Hilferty approximation)."""
    counts = np.asarray(counts, np.float64)
    expected = counts.sum() * np.asarray(probs)
    stat = ((counts - expected) ** 2 / expected).sum()
    k = len(counts) - 1
    return stat < k * (1 - 2 / (9 * k) + 3.09 * math.sqrt(2 / (9 * k))) ** 3


def test_randint_is_uniform_on_its_range():
    r = gj.random.randint(gj.random.key(11), (N,), -3, 7).numpy()
    assert r.dtype == np.int32 and r.min() == -3 and r.max() == 6
    assert _chi2_ok(np.bincount(r + 3), np.full(10, 0.1))
    assert (gj.random.randint(gj.random.key(0), (5,), 4, 4).numpy() == 4).all()
    wide = gj.random.randint(gj.random.key(0), (N,), -2**31, 2**31).numpy()
    assert wide.min() < -2**30 and wide.max() > 2**30
    assert gj.random.randint(gj.random.key(0), (3,), 0, 5, dtype=gj.int64).dtype == gj.int64


@pytest.mark.parametrize("lo,hi", [(-3, 7), (5, 5), (7, 2), (-100, 2**31 - 1), (0, 1)])
def test_randint_with_traced_bounds_equals_static_bounds(lo, hi):
    key = gj.random.key(6)
    traced = gj.jit(lambda a, b: gj.random.randint(key, (500,), a, b))(np.int32(lo),
                                                                        np.int32(hi))
    np.testing.assert_array_equal(traced.numpy(),
                                  gj.random.randint(key, (500,), lo, hi).numpy())


def test_categorical_frequencies_follow_softmax_of_the_logits():
    p = np.array([0.1, 0.2, 0.7])
    c = gj.random.categorical(gj.random.key(12), np.log(p), shape=(N,)).numpy()
    assert c.dtype == np.int32 and _chi2_ok(np.bincount(c, minlength=3), p)
    logits = np.array([[0.0, 0.0, -np.inf], [-np.inf, -np.inf, 0.0]])
    batched = gj.random.categorical(gj.random.key(1), logits, axis=1)
    assert batched.shape == (2,) and int(batched[1]) == 2 and int(batched[0]) in (0, 1)


def test_permutation_and_choice():
    key = gj.random.key(21)
    perm = gj.random.permutation(key, 2000).numpy()
    assert sorted(perm.tolist()) == list(range(2000)) and (perm != np.arange(2000)).any()
    x = np.arange(12.0).reshape(3, 4)
    shuffled = gj.random.permutation(key, x, axis=1).numpy()
    np.testing.assert_array_equal(np.sort(shuffled, axis=1), x)
    np.testing.assert_array_equal(shuffled[1] - shuffled[0], 4.0)   # columns move together
    each = gj.random.permutation(key, np.tile(np.arange(50), (4, 1)), axis=1,
                                 independent=True).numpy()
    assert all(sorted(row) == list(range(50)) for row in each)
    assert len({tuple(row) for row in each}) == 4          # the rows move independently
    picks = gj.random.choice(key, 6, (3, 2), replace=False).numpy()
    assert picks.shape == (3, 2) and len(set(picks.ravel())) == 6
    draws = gj.random.choice(key, 3, (N,), p=np.array([0.1, 0.2, 0.7])).numpy()
    assert _chi2_ok(np.bincount(draws, minlength=3), [0.1, 0.2, 0.7])
    rows = gj.random.choice(key, x, (2,), axis=0).numpy()
    assert rows.shape == (2, 4) and all(r.tolist() in x.tolist() for r in rows)
    top = gj.random.choice(key, 4, (2,), replace=False,
                           p=np.array([0.0, 0.5, 0.0, 0.5])).numpy()
    assert sorted(top.tolist()) == [1, 3]


def test_split_keys_give_independent_streams():
    a, b = gj.random.split(gj.random.key(0))
    za, zb = (gj.random.normal(k, (N,)).numpy() for k in (a, b))
    assert abs(np.corrcoef(za, zb)[0, 1]) < 4 / math.sqrt(N)
    assert abs(np.corrcoef(za[:-1], za[1:])[0, 1]) < 4 / math.sqrt(N)
    keys = words(gj.random.split(gj.random.key(0), 1000))
    assert len({tuple(k) for k in keys}) == 1000


# ---- as IR: per call under jit, the same bits natively and in the interpreter, vmap --------

def _draws(key):
    return (gj.random.randint(key, (50,), 0, 10), gj.random.permutation(key, 20),
            gj.random.bernoulli(key, 0.3, (40,)), gj.random.uniform(key, (30,)),
            gj.random.split(key, 3), gj.random.choice(key, 7, (4,), replace=False),
            gj.random.normal(key, (30,)), gj.random.truncated_normal(key, -1.0, 1.0, (9,)))


def test_jit_computes_per_call_and_matches_the_interpreter_bit_for_bit():
    f = gj.jit(_draws)
    k1, k2 = gj.random.split(gj.random.key(3))
    first, second = f(k1), f(k2)
    assert not np.array_equal(first[3].numpy(), second[3].numpy())
    fn = gj.make_ir(_draws)(k1)
    reference = interpret(fn, np.asarray(k1))
    eager = _draws(k1)
    exact = (0, 1, 2, 3, 4, 5)     # integers, bools, keys and [0, 1) floats: no rounding
    for i, (got, want, now) in enumerate(zip(first, reference, eager)):
        if i in exact:
            np.testing.assert_array_equal(np.asarray(got), want)
        else:      # erfinv/log and FMA contraction in native code: a few float32 ulps
            np.testing.assert_allclose(np.asarray(got), want, rtol=2e-6, atol=2e-6)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(now))


def test_vmap_over_keys_equals_one_call_per_key():
    keys = gj.random.split(gj.random.key(17), 4)
    batched = gj.vmap(lambda k: gj.random.normal(k, (3,)))(keys).numpy()
    one_by_one = np.stack([gj.random.normal(keys[i], (3,)).numpy() for i in range(4)])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-6, atol=1e-6)
    ints = gj.vmap(lambda k: gj.random.randint(k, (5,), 0, 100))(keys).numpy()
    np.testing.assert_array_equal(ints, np.stack(
        [gj.random.randint(keys[i], (5,), 0, 100).numpy() for i in range(4)]))
    folded = gj.vmap(lambda k: gj.random.fold_in(k, 3))(keys).numpy()
    np.testing.assert_array_equal(folded, np.stack(
        [gj.random.fold_in(keys[i], 3).numpy() for i in range(4)]))


def test_traced_seed_and_fold_in_data():
    f = gj.jit(lambda s, d: gj.random.fold_in(gj.random.key(s), d))
    got = f(np.int32(5), np.int32(9)).numpy()
    np.testing.assert_array_equal(got, gj.random.fold_in(gj.random.key(5), 9).numpy())


def test_gradients_through_the_bounds_match_finite_differences():
    key = gj.random.key(4)

    def f(lo, hi):
        u = gj.random.uniform(key, (6,), gj.float64, lo, hi)
        t = gj.random.truncated_normal(key, lo, hi, (6,), gj.float64)
        return (u * u).sum() + t.sum()

    lo, hi = np.float64(-0.5), np.float64(1.5)
    g = gj.grad(f, argnums=(0, 1))(lo, hi)
    eps = 1e-6
    for i, (dlo, dhi) in enumerate(((eps, 0), (0, eps))):
        numeric = (float(f(lo + dlo, hi + dhi)) - float(f(lo - dlo, hi - dhi))) / (2 * eps)
        assert abs(float(g[i]) - numeric) < 1e-5 * max(1, abs(numeric))


def test_bad_keys_and_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match=r"a random key is an int32 tensor of shape \(2,\)"):
        gj.random.normal(np.zeros(3, np.int32), (2,))
    with pytest.raises(TypeError, match="must be a float dtype"):
        gj.random.uniform(gj.random.key(0), (2,), gj.int32)
    with pytest.raises(ValueError, match="Cannot take a larger sample than population"):
        gj.random.choice(gj.random.key(0), 3, (4,), replace=False)
    with pytest.raises(ShapeError, match="cannot be broadcast"):
        gj.random.uniform(gj.random.key(0), (2,), minval=np.zeros(3))
