"""Reference-count decisions never change a number (adversarial holders).

Two places decide by sys.getrefcount whether something is still held:
- tracer/realize_plans.held: at a read, a pending value that a Tensor outside the graph
  holds (two_layer_net_tensor.py's `h = x.mm(w1)`, used again by the hand-written backward)
  is computed and kept along with the read. Holding it (by a name, in a list or a dict, as
  a generator's or a traceback's frame local, in a closure) or not (a dead weak reference)
  may only change what is computed when: every value read is the NumPy reference's, and
  the same bits whichever way h is held.
- runtime/executable.py's recycled outputs: a large output of the last call nobody holds is
  written again. A NumPy view, a memoryview, np.frombuffer, a ctypes array, DLPack, a weak
  reference, a container, a generator or a traceback holding the old output keeps it from
  being written: its values stay.
"""
import ctypes
import gc
import sys
import weakref

import numpy as np
import pytest

import gradjit as torch
import runtime
from tests.prim_samples import T, make_fn
from tracer import realize_plans


def _keep_by_name(h):
    return lambda: h


def _keep_in_list(h):
    box = [h]
    return lambda: box[0]


def _keep_in_dict(h):
    box = {"h": h}
    return lambda: box["h"]


def _keep_in_generator(h):
    def gen(v):
        while True:
            yield v
    g = gen(h)
    next(g)
    return lambda: next(g)


def _keep_in_traceback(h):
    def fail(v):
        raise ValueError(v.shape)
    try:
        fail(h)
    except ValueError as e:
        tb = e.__traceback__
    return lambda: tb.tb_next.tb_frame.f_locals["v"]


def _keep_weakly(h):
    ref = weakref.ref(h)
    return lambda: ref()


HOLDERS = [_keep_by_name, _keep_in_list, _keep_in_dict, _keep_in_generator,
           _keep_in_traceback, _keep_weakly]


def _two_layer(holder, steps: int = 4):
    """two_layer_net_tensor.py's loop (small), h held by holder from its product to the
    end of the step; (losses, w1, w2, the last h read through its holder or None)."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in ((64, 1000), (64, 10), (1000, 100), (100, 10))]
    x, y, w1, w2 = (torch.tensor(a) for a in arrays)
    losses, last = [], None
    for _ in range(steps):
        h = x.mm(w1)
        get_h = holder(h)
        h_relu = h.clamp(min=0)
        del h                                # from here on only the holder has it
        y_pred = h_relu.mm(w2)
        losses.append((y_pred - y).pow(2).sum().item())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(w2.t()).clone()
        h = get_h()
        grad_h[(h if h is not None else x.mm(w1)) < 0] = 0
        del h
        grad_w1 = x.t().mm(grad_h)
        w1 -= 1e-6 * grad_w1
        w2 -= 1e-6 * grad_w2
        last = get_h
    h = last()
    return losses, w1.numpy(), w2.numpy(), (None if h is None else h.numpy()), arrays


def _reference(arrays, steps: int = 4):
    x, y, w1, w2 = (a.astype(np.float64) for a in arrays)
    losses = []
    for _ in range(steps):
        h = x @ w1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2
        losses.append(((y_pred - y) ** 2).sum())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T @ grad_y_pred
        grad_h = grad_y_pred @ w2.T
        grad_h[h < 0] = 0
        w1 = w1 - 1e-6 * (x.T @ grad_h)
        w2 = w2 - 1e-6 * grad_w2
    return losses, w1, w2, h


def test_holding_h_any_way_gives_the_same_numbers(monkeypatch):
    kept = []
    real = realize_plans.held

    def counting(walk, candidates):
        out = real(walk, candidates)
        kept.append(len(out))
        return out
    monkeypatch.setattr(realize_plans, "held", counting)
    runs = {}
    for holder in HOLDERS:
        kept.clear()
        runs[holder.__name__] = _two_layer(holder), sum(kept)
    (losses, w1, w2, h, arrays), by_name_kept = runs["_keep_by_name"]
    assert by_name_kept > 0                  # the plain name: h kept at the reads
    ref_losses, ref_w1, ref_w2, ref_h = _reference(arrays)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    np.testing.assert_allclose(w1, ref_w1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w2, ref_w2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h, ref_h, rtol=1e-4, atol=1e-3)
    for name, ((l2, a1, a2, h2, _), n_kept) in runs.items():
        assert l2 == losses, name
        np.testing.assert_array_equal(a1, w1, err_msg=name)
        np.testing.assert_array_equal(a2, w2, err_msg=name)
        if name == "_keep_weakly":
            assert h2 is None                # nothing held it: it died
        else:
            np.testing.assert_array_equal(h2, h, err_msg=name)
            assert n_kept == by_name_kept, name


# ---- runtime: recycled outputs ----------------------------------------------------------

def _generator_holding(o):
    def gen(v):
        yield v
    g = gen(o)
    return g


def _traceback_holding(o):
    def fail(v):
        raise ValueError(v.shape)
    try:
        fail(o)
    except ValueError as e:
        return e.__traceback__


OUTPUT_HOLDERS = {
    "view": lambda o: o[1:],
    "memoryview": memoryview,
    "frombuffer": lambda o: np.frombuffer(o, dtype=np.float64),
    "ctypes": lambda o: np.ctypeslib.as_array(
        o.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), (o.size,)),
    "dlpack": np.from_dlpack,
    "list": lambda o: [o],
    "generator": _generator_holding,
    "traceback": _traceback_holding,
    "reshape": lambda o: o.reshape(-1),
    "transpose": lambda o: o.T,
}


@pytest.mark.parametrize("how", sorted(OUTPUT_HOLDERS))
def test_a_held_large_output_is_never_written_again(how):
    fn = make_fn("square", [T("f64", (256, 512))], lambda b, x: [b.mul(x, x)])
    exe = runtime.build_executable(fn)
    assert exe._big                          # the output is large enough to be recycled
    (o,) = exe.run([np.full((256, 512), 3.0)])
    address = o.ctypes.data
    keep = OUTPUT_HOLDERS[how](o)
    del o
    gc.collect()
    (new,) = exe.run([np.full((256, 512), 5.0)])
    assert new.ctypes.data != address        # a fresh array: the old one is held
    assert (new == 25.0).all()
    assert keep is not None
    (dropped,) = exe.run([np.full((256, 512), 7.0)])
    del new
    (again,) = exe.run([np.full((256, 512), 2.0)])
    assert (again == 4.0).all() and (dropped == 49.0).all()
    # and the old output, through its holder, still has the first call's values
    if how == "generator":
        held = next(keep)
    elif how == "traceback":
        held = keep.tb_next.tb_frame.f_locals["v"]
    elif how == "list":
        held = keep[0]
    else:
        held = keep
    assert (np.asarray(held) == 9.0).all()


def test_an_output_nobody_holds_is_written_again():
    """(the other side: recycling does happen, so the tests above test something)"""
    fn = make_fn("square", [T("f64", (256, 512))], lambda b, x: [b.mul(x, x)])
    exe = runtime.build_executable(fn)
    (o,) = exe.run([np.full((256, 512), 3.0)])
    address = o.ctypes.data
    del o
    (new,) = exe.run([np.full((256, 512), 5.0)])
    assert new.ctypes.data == address and (new == 25.0).all()
    assert sys.getrefcount(new) >= 2
