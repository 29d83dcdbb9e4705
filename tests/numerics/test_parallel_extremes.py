"""Full max/min reductions of f32 expressions big enough to be split across threads.

The per-task partials of a max/min were combined through an f64 accumulator meant only for
float sums, and the kernel failed to compile ("cannot store double to float*"): softmax,
logsumexp, amax of a 100,000-element f32 vector crashed in both fronts.
"""
import numpy as np
import pytest

import gradjit as gj
from ir.interpret import interpret
from runtime import threads

RNG = np.random.default_rng(5)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_threads(request):
    threads.set_num_threads(request.param)
    yield request.param
    threads.set_num_threads(None)


def _softmax(x):
    e = np.exp(x.astype(np.float64) - x.max())
    return e / e.sum()


def _logsumexp(x):
    x = x.astype(np.float64)
    return x.max() + np.log(np.exp(x - x.max()).sum())


# (name, functional op on an expression of x, NumPy reference of that expression's x)
OPS = {
    "softmax": (lambda x: gj.softmax(x * 2.0, 0), lambda x: _softmax(x * 2)),
    "logsumexp": (lambda x: gj.logsumexp(x * 2.0, 0), lambda x: _logsumexp(x * 2)),
    "amax": (lambda x: gj.amax(gj.exp(x)), lambda x: np.exp(x.astype(np.float64)).max()),
    "amin": (lambda x: gj.amin(gj.exp(x)), lambda x: np.exp(x.astype(np.float64)).min()),
    "argmax": (lambda x: gj.argmax(x * 3.0 - 1.0), lambda x: np.argmax(x * 3 - 1)),
    "argmin": (lambda x: gj.argmin(x * 3.0 - 1.0), lambda x: np.argmin(x * 3 - 1)),
}


def _check(name, got, x):
    want = OPS[name][1](x)
    got = np.asarray(got)
    if name.startswith("arg"):
        assert int(got) == int(want)
    else:
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-6, atol=1e-12)


@pytest.mark.parametrize("n", [10 ** 5, 10 ** 6])
@pytest.mark.parametrize("name", list(OPS))
def test_functional_f32_extremes_over_threads(name, n, n_threads):
    x = RNG.standard_normal(n).astype(np.float32)
    got = gj.jit(OPS[name][0])(x)
    assert np.asarray(got).dtype == (np.int64 if name.startswith("arg") else np.float32)
    _check(name, got, x)


@pytest.mark.parametrize("name", list(OPS))
def test_imperative_f32_extremes_over_threads(name, n_threads):
    x = RNG.standard_normal(10 ** 5).astype(np.float32)
    _check(name, OPS[name][0](gj.tensor(x)).numpy(), x)


@pytest.mark.parametrize("kind", ["max", "min"])
def test_f32_extreme_of_split_nest_equals_interpreter(kind):
    """The compiled kernel and the reference interpreter agree bit for bit."""
    x = RNG.standard_normal(10 ** 5).astype(np.float32)
    f = (lambda x: gj.amax(x * 2.0 - 1.0)) if kind == "max" else (lambda x: gj.amin(x * 2.0 - 1.0))
    compiled = np.asarray(gj.jit(f)(x))
    ref = interpret(gj.make_ir(f)(x), x)[0]
    assert compiled.tobytes() == np.asarray(ref, np.float32).tobytes()
