"""Independent dots of vectors of one length summed in one loop (codegen.vector_dots): each
keeps its own chain of additions, so every result is bitwise the one codegen.kernels' loop
gives alone (NaN, infinities, signed zeros included), with and without bounds checks;
values against the reference interpreter; a dot reading another's result is not grouped
(counters), and the ops reading a member's result run after the group."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen import vector_dots
from codegen.fusion import live_ops
from ir.interpret import interpret
from tracer import realize_plans, step_capture
from tests.prim_samples.cases import T, make_fn

NP = {"f32": np.float32, "f64": np.float64}
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]
DOT = {"contract": ((0,), (0,)), "batch": ((), ())}


def _build(fn, grouped: bool, bounds_check: bool = False):
    """A fresh executable of fn with the grouping on or off, and the dots it grouped."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(vector_dots, "ENABLED", grouped)
        before = vector_dots.STATS["dots"]
        exe = runtime.build_executable(fn, bounds_check=bounds_check)
        return exe, vector_dots.STATS["dots"] - before


def _dots(n: int, dtype: str, pairs: list, chained: bool):
    """Params v0..v3 of [n]; one dot per (i, j) of pairs, each result scaled and summed
    (ops reading the dots between them); chained: one more dot over v0 * (first dot),
    which reads a member's result, so it cannot join the group."""
    def body(b, *vs):
        outs, total = [], None
        for i, j in pairs:
            d = b.dot_general(vs[i], vs[j], **DOT)
            scaled = b.mul(d, b.const(1.5, dtype))
            total = scaled if total is None else b.add(total, scaled)
            outs.append(d)
        if chained:
            scaled_v = b.mul(vs[0], b.broadcast_in_dim(outs[0], dims=(), shape=(n,)))
            outs.append(b.dot_general(scaled_v, vs[1], **DOT))
        return outs + [total]
    return make_fn("dots", [T(dtype, (n,))] * 4, body)


def _sample(rng, dtype, n, special):
    x = rng.standard_normal(n).astype(NP[dtype])
    if special:
        at = rng.choice(n, size=min(n, 3), replace=False)
        x[at] = rng.choice(SPECIAL, size=at.size)
    return x


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3000), dtype=st.sampled_from(["f32", "f64"]),
       pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=6),
       chained=st.booleans(), special=st.booleans(), seed=st.integers(0, 2**16))
def test_grouped_dots_give_the_bits_of_each_dot_alone(n, dtype, pairs, chained, special, seed):
    fn = _dots(n, dtype, pairs, chained)
    rng = np.random.default_rng(seed)
    args = [_sample(rng, dtype, n, special) for _ in range(4)]
    fast, grouped = _build(fn, True)
    checked, _ = _build(fn, True, bounds_check=True)
    plain, none = _build(fn, False)
    assert grouped == len(pairs) and none == 0       # (the chained dot stays alone)
    for a, b, c in zip(fast.run(args), plain.run(args), checked.run(args)):
        assert a.tobytes() == b.tobytes() == c.tobytes()
    if not special:
        for a, r in zip(fast.run(args), interpret(fn, *args)):
            np.testing.assert_allclose(a, np.asarray(r), rtol=1e-4, atol=1e-3 * n)


def test_a_dot_reading_a_member_runs_after_the_group():
    fn = _dots(50, "f32", [(0, 1), (2, 3)], chained=True)
    ops = live_ops(fn)
    names = [op.prim.name for op in ops]
    assert names.count("vector_dots") == 1 and names.count("dot_general") == 1
    at = {r: k for k, op in enumerate(ops) for r in op.results}
    for k, op in enumerate(ops):                     # (a valid order: operands first)
        assert all(at.get(x, -1) < k for x in op.inputs)


@pytest.mark.parametrize("shapes", [[(5,), (6,)], [(4, 3), (3,)]])
def test_dots_of_other_lengths_or_ranks_are_not_grouped(shapes):
    def body(b, x, y, u, v):
        return [b.dot_general(x, y, **DOT) if x.ndim == 1 else
                b.dot_general(x, y, contract=((1,), (0,)), batch=((), ())),
                b.dot_general(u, v, **DOT)]
    (s1, s2) = shapes
    u_shape = (6,) if s1 == (5,) else (3,)
    fn = make_fn("two", [T("f32", s1), T("f32", (s1[-1],)), T("f32", u_shape),
                         T("f32", u_shape)], body)
    _, grouped = _build(fn, True)
    assert grouped == 0


def _fresh():
    runtime.clear_cache()
    realize_plans.clear()
    step_capture.reset()


def test_polynomial_step_reads_group_its_dots_and_keep_the_bits(gradjit_env):
    """pytorch/tutorials' polynomial_tensor.py loop: the same losses and coefficients, bit
    for bit, with the grouping on and off (each compiled afresh, no disk cache)."""
    gradjit_env("GRADJIT_DISK_CACHE", "0")

    def run(grouped: bool):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(vector_dots, "ENABLED", grouped)
            _fresh()
            before = vector_dots.STATS["groups"]
            x = gj.linspace(-3.0, 3.0, 2000)
            y = gj.sin(x)
            w = [gj.tensor(v) for v in (0.1, -0.2, 0.3, -0.05)]
            losses = []
            for _ in range(12):
                a, b, c, d = w
                y_pred = a + b * x + c * x.pow(2) + d * x.pow(3)
                losses.append((y_pred - y).pow(2).sum().item())
                g = -2.0 * (y - y_pred)
                grads = [g.sum(), gj.matmul(g, x).sum(), gj.matmul(g, x.pow(2)).sum(),
                         gj.matmul(g, x.pow(3)).sum()]
                for t, gr in zip(w, grads):
                    t -= 1e-6 * gr
            _fresh()
            return losses, [t.numpy().tobytes() for t in w], vector_dots.STATS["groups"] - before
    on, off = run(True), run(False)
    assert on[2] > 0 and off[2] == 0
    assert np.array(on[0]).tobytes() == np.array(off[0]).tobytes() and on[1] == off[1]
