"""Reverse mode of scan: what the forward loop tapes (only what the adjoint reads, never a
loop-invariant carry), what the adjoint recomputes (cheap elementwise ops, never a
dot_general), the min-cut partition on small bodies, and gradients against finite
differences for LSTM-like, nested and partly-used scans."""
import numpy as np
import pytest

from ir.autodiff import vjp
from ir.autodiff.partition import saved_values
from ir.autodiff.transforms import vjp_joint
from ir.core import walk_ops
from ir.passes import optimize
from ir.printer import print_function
from tests.prim_samples import SAMPLES
from tests.filecheck import filecheck
from tests.gradcheck import check_grads, f64, make_fn

RNG = np.random.default_rng(7)


def _joint_saved(build, *types, free=()):
    """(the joint of a body, names of the values its adjoint saves). free: param indices."""
    body = make_fn(build, *types, name="body")
    j = vjp_joint(body, list(range(len(types))))
    names = {}
    for i, p in enumerate(j.params):
        names[p] = body.params[i].name_hint
    for op in j.ops[:j.n_primal]:
        names[op.results[0]] = op.prim.name
    saved = saved_values(j, {j.params[i] for i in free})
    return sorted(names.get(v, "adjoint-only") for v in saved)


# ---- the partition --------------------------------------------------------------------------

def test_a_carry_whose_derivative_needs_it_is_saved_and_cos_recomputed():
    assert _joint_saved(lambda b, c: b.sin(c), f64[3]) == ["c"]


def test_equal_bytes_save_the_later_value():
    """exp's VJP reads exp(c): saving it or c costs the same; the later one is saved."""
    assert _joint_saved(lambda b, c: b.exp(c), f64[3]) == ["exp"]


def test_free_params_are_recomputed_from_rather_than_saved():
    """x is an xs slice (free): exp(x) is recomputed from it, c is saved."""
    assert _joint_saved(lambda b, c, x: b.mul(c, b.exp(x)), f64[3], f64[3], free=(1,)) \
        == ["c", "x"]


def test_a_product_is_saved_never_recomputed():
    """tanh(c @ w): the adjoint reads c (for w's cotangent), w (free, invariant) and
    1 - t^2: it saves tanh's output, not the product's inputs to redo the product."""
    saved = _joint_saved(lambda b, c, w: b.tanh(b.dot_general(
        c, w, contract=((1,), (0,)), batch=((), ()))), f64[2, 4], f64[4, 4], free=(1,))
    assert saved == ["c", "tanh", "w"]


# ---- the emitted scans --------------------------------------------------------------------

def test_the_invariant_carry_is_carried_by_the_adjoint_not_taped():
    case = next(c for c in SAMPLES["scan"].grad if c.label == "rnn")
    filecheck(print_function(vjp(case.fn())), """
        CHECK:      func @rnn_step_taped(%h: f64[3], %w: f64[3], %x: f64[3])
        CHECK:      return %2, %w, %3, %h
        CHECK:      = scan %g, %g_1, %w, %3, %xs, %g_2 {length=4, num_carry=3, reverse=true}
        CHECK:      func @rnn_step_adjoint(%g: f64[3], %g_w: f64[3], %w: f64[3], %h: f64[3],
        CHECK:      return %11, %13, %w, %10
    """)


def _lstm_like(b, w, h, xs):
    """h <- tanh(concat(x, h) @ w) * sigmoid(...): a weight (n x 4n) captured as a carry."""
    n = h.shape[1]

    def step(b, h, w, x):
        z = b.dot_general(b.concatenate(x, h, axis=1), w, contract=((1,), (0,)),
                          batch=((), ()))
        gate = b.logistic(b.slice(z, start=(0, 0), limit=(2, n), stride=(1, 1)))
        cand = b.tanh(b.slice(z, start=(0, n), limit=(2, 2 * n), stride=(1, 1)))
        h_new = b.mul(gate, cand)
        return h_new, w, b.mul(h_new, h_new)
    region = make_fn(step, h.type, w.type, h.type, name="cell")
    _, _, ys = b.emit("scan", h, w, xs, num_carry=2, length=xs.shape[0], reverse=False,
                      regions=(region,))
    return b.reduce_sum(ys, axes=(0, 1, 2))


def test_an_lstm_like_cell_tapes_per_step_values_only():
    fn = make_fn(_lstm_like, f64[6, 6], f64[2, 3], f64[5, 2, 3])
    out = vjp(fn, wrt=(0, 1))
    forward, adjoint = [op for op in out.body if op.prim.name == "scan"]
    tapes = forward.results[3:]                         # after h, w and the ys
    assert all(t.shape[1:] != (6, 6) for t in tapes), "the weight was taped"
    # per step: h (the weight's cotangent reads concat(x, h)) and two thirds of z
    assert sum(t.type.size for t in tapes) <= 5 * (2 * 3 + 2 * 6), tapes
    # the adjoint reads the taped product, it does not redo concat(x, h) @ w
    dots = [op for op in walk_ops(adjoint.regions[0]) if op.prim.name == "dot_general"]
    assert all(op.params["contract"] != ((1,), (0,)) for op in dots)
    check_grads(fn, [RNG.normal(size=(6, 6)) * 0.5, RNG.normal(size=(2, 3)),
                     RNG.normal(size=(5, 2, 3))], modes=("rev",))


def test_after_optimize_the_weight_gradient_is_one_product_after_the_loop():
    fn = make_fn(_lstm_like, f64[6, 6], f64[2, 3], f64[5, 2, 3])
    out = optimize(vjp(fn, wrt=(0,)))
    text = print_function(out)
    filecheck(text, """
        CHECK: reverse=true
        CHECK: func @cell_adjoint(
        CHECK: }
        CHECK: contract=[[0, 1], [0, 1]]} : f64[6,6]
    """)


def test_only_used_ys_get_cotangents_and_unused_tapes_are_dropped():
    """f returns the final carry only: the ys' cotangents are None in the adjoint, which
    needs less than the forward planned; optimize drops the stacks nobody reads."""
    def build(b, h, xs):
        def step(b, h, x):
            h_new = b.sin(b.mul(h, x))
            return h_new, b.exp(b.mul(h_new, x))
        region = make_fn(step, h.type, h.type, name="step")
        last, _ = b.emit("scan", h, xs, num_carry=1, length=xs.shape[0], reverse=True,
                         regions=(region,))
        return last
    fn = make_fn(build, f64[3], f64[4, 3])
    check_grads(fn, [RNG.normal(size=3), RNG.normal(size=(4, 3))], order=2)
    out = optimize(vjp(fn))
    forward = next(op for op in out.body if op.prim.name == "scan")
    assert "exp" not in print_function(forward.regions[0])


def test_nested_scans_differentiate():
    def build(b, h, w, xs):
        def inner(b, c, w, x):
            return b.tanh(b.add(b.mul(c, w), x)), w, b.mul(c, x)

        def outer(b, h, w, x):
            region = make_fn(inner, h.type, w.type, h.type, name="inner")
            xx = b.broadcast_in_dim(x, shape=(2, 3), dims=(1,))
            c, _, ys = b.emit("scan", h, w, xx, num_carry=2, length=2, reverse=False,
                              regions=(region,))
            return c, w, b.reduce_sum(ys, axes=(0,))
        region = make_fn(outer, h.type, w.type, h.type, name="outer")
        last, _, ys = b.emit("scan", h, w, xs, num_carry=2, length=xs.shape[0], reverse=False,
                             regions=(region,))
        return b.add(last, b.reduce_sum(ys, axes=(0,)))
    fn = make_fn(build, f64[3], f64[3], f64[3, 3])
    check_grads(fn, [RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=(3, 3))],
                order=2)


@pytest.mark.parametrize("label", [c.label for c in SAMPLES["scan"].grad])
def test_optimized_scan_gradients_match_the_unoptimized(label):
    from ir.interpret import interpret
    case = next(c for c in SAMPLES["scan"].grad if c.label == label)
    fn = case.fn()
    grad = vjp(fn)
    args = case.sample(seed=3)
    cts = [RNG.normal(size=r.type.shape) for r in fn.results if r.dtype.startswith("f")]
    want = interpret(grad, *args, *cts)
    got = interpret(optimize(grad), *args, *cts)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
