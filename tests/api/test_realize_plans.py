"""Reads of a pending graph whose structure was read before rerun the kept program
(tracer/realize_plans.py): counted, and equal to building the program again."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from runtime import config
from tracer import realize_plans


def _compiles():
    if config.backend() == "interpret":
        return None
    import runtime
    return runtime.cache_info()["compiles"]


def test_a_loop_reading_its_loss_reruns_one_program():
    x = gj.linspace(-1.0, 1.0, 50)
    w = gj.tensor([0.5, -0.25])
    values = []
    for step in range(6):
        loss = ((w[0] + w[1] * x - x ** 2) ** 2).sum()
        values.append(loss.item())
        with gj.no_grad():
            w -= 0.01 * gj.tensor([1.0, 1.0])
        if step == 2:
            hits, compiles = realize_plans.STATS["hits"], _compiles()
    assert realize_plans.STATS["hits"] - hits >= 3
    assert _compiles() == compiles
    ref = []
    xs = np.linspace(-1.0, 1.0, 50, dtype=np.float32)
    wv = np.array([0.5, -0.25], np.float32)
    for _ in range(6):
        ref.append(float(np.sum((wv[0] + wv[1] * xs - xs ** 2) ** 2, dtype=np.float32)))
        wv = wv - np.float32(0.01)
    np.testing.assert_allclose(values, ref, rtol=1e-5)


def _exprs(kind: int, a, b, c):
    s = a + b
    return [s * s, s * (b + c), (a + b) * (a + c), gj.exp(a) - b * c, (a * b).sum() * c][kind]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 3)), min_size=2, max_size=6))
def test_kept_programs_compute_what_new_programs_compute(reads):
    """Any order of structures and shapes, with sharing patterns that only the key's
    indices tell apart ((a+b)*(a+b) vs (a+b)*(b+c)): bitwise equal to no plans."""
    results = []
    for use in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not use:
                mp.setattr(realize_plans, "lookup", lambda walk: None)
            rng = np.random.default_rng(0)
            out = []
            for kind, n in reads:
                a, b, c = (gj.tensor(rng.standard_normal(n).astype(np.float32))
                           for _ in range(3))
                out.append(_exprs(kind, a, b, c).numpy().copy())
            results.append(out)
    for x, y in zip(*results):
        np.testing.assert_array_equal(x, y)


def test_reading_a_traced_value_still_raises():
    with pytest.raises(Exception, match="traced"):
        gj.jit(lambda t: (t * 2.0).item())(gj.tensor([1.0]))
