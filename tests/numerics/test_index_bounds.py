"""Out-of-bounds indices: clamped (gathers) or dropped (scatters) when traced, as JAX does;
PyTorch's IndexError in the imperative front, where the index is concrete.

Before, a traced index into a 2-d tensor was only clamped as a flat position, so an index
past its axis read a neighbouring row; and a traced scatter added out-of-bounds updates to
the clamped position. Every functional case is also compiled with bounds checks (which raise
instead of touching memory outside a buffer) and run through the reference interpreter.
"""
import numpy as np
import pytest

import gradjit as gj
import runtime
from ir.interpret import interpret

X1 = np.arange(1.0, 4.0)                         # size 3
X2 = np.arange(12.0).reshape(3, 4)
I1 = np.array([0, 5, -1, -7, 2, 3])
I2 = np.array([[0, 9, -1, 2], [3, 1, -4, 2]])


def clip(i, n, wrap=True):
    """JAX's index rule: negative entries count from the end (wrap), then clamp."""
    i = np.where(i < 0, i + n, i) if wrap else i
    return np.clip(i, 0, n - 1)


def drop_add(base, axis, idx, upd, n, wrap):
    """np.add.at with out-of-bounds entries dropped (after wrapping negatives)."""
    out = base.copy()
    i = np.where(idx < 0, idx + n, idx) if wrap else idx
    keep = (i >= 0) & (i < n)
    moved, upd = np.moveaxis(out, axis, 0), np.moveaxis(upd, axis, 0)
    np.add.at(moved, i[keep], upd[keep])
    return out


def take_along(x, idx, axis):
    """torch.gather with clamped indices (idx may be smaller than x along other axes)."""
    out = np.empty(idx.shape, x.dtype)
    for pos in np.ndindex(*idx.shape):
        source = list(pos)
        source[axis] = clip(idx[pos], x.shape[axis], wrap=False)
        out[pos] = x[tuple(source)]
    return out


def scatter_along(x, idx, src, axis):
    out = x.copy()
    n = x.shape[axis]
    for pos in np.ndindex(*idx.shape):
        j = idx[pos]
        if 0 <= j < n:
            target = list(pos)
            target[axis] = j
            out[tuple(target)] += src[pos]
    return out


# name: (function, args, NumPy reference)
CASES = {
    "getitem_1d": (lambda x, i: x[i], (X1, I1), X1[clip(I1, 3)]),
    "getitem_2d_row": (lambda x, i: x[i], (X2, I1), X2[clip(I1, 3)]),
    "getitem_2d_pair": (lambda x, i: x[i, 1], (X2, np.array([4, -1, -5])),
                        X2[clip(np.array([4, -1, -5]), 3), 1]),
    "getitem_2d_two_arrays": (lambda x, i, j: x[i, j], (X2, I1, I1 + 2),
                              X2[clip(I1, 3), clip(I1 + 2, 4)]),
    "gather_1d": (lambda x, i: gj.gather(x, 0, i), (X1, I1), take_along(X1, I1, 0)),
    "gather_2d_dim0": (lambda x, i: gj.gather(x, 0, i), (X2, I2), take_along(X2, I2, 0)),
    "gather_2d_dim1": (lambda x, i: gj.gather(x, 1, i), (X2, I2[:, :3] * 2),
                       take_along(X2, I2[:, :3] * 2, 1)),
    "index_select": (lambda x, i: gj.index_select(x, 1, i), (X2, I1),
                     X2[:, clip(I1, 4)]),
    "index_add_1d": (lambda x, i, u: x.index_add(0, i, u), (X1, I1, np.full(6, 10.0)),
                     drop_add(X1, 0, I1, np.full(6, 10.0), 3, True)),
    "index_add_2d": (lambda x, i, u: x.index_add(1, i, u), (X2, I1, np.ones((3, 6))),
                     drop_add(X2, 1, I1, np.ones((3, 6)), 4, True)),
    "scatter_add_1d": (lambda x, i, u: x.scatter_add(0, i, u), (X1, I1, np.ones(6)),
                       scatter_along(X1, I1, np.ones(6), 0)),
    "scatter_add_2d": (lambda x, i, u: x.scatter_add(0, i, u), (X2, I2, np.ones((2, 4))),
                       scatter_along(X2, I2, np.ones((2, 4)), 0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_traced_out_of_bounds_index_is_clamped_or_dropped(name):
    f, args, want = CASES[name]
    np.testing.assert_array_equal(np.asarray(gj.jit(f)(*args)), want)


@pytest.mark.parametrize("name", list(CASES))
def test_bounds_checked_kernel_and_interpreter_agree(name):
    """The native kernel with every load and store checked: nothing outside a buffer."""
    f, args, want = CASES[name]
    fn = gj.make_ir(f)(*args)
    exe = runtime.compile(fn, bounds_check=True)
    assert exe.bounds_check
    got = exe(*args)
    np.testing.assert_array_equal(np.asarray(got[0] if isinstance(got, (list, tuple)) else got),
                                  want)
    np.testing.assert_array_equal(interpret(fn, *args)[0], want)


def test_gradient_of_clamped_gather_goes_to_the_clamped_element():
    g = gj.grad(lambda x, i: (x[i] * gj.tensor([1.0, 2, 3, 4, 5, 6], dtype=gj.float64)).sum())
    want = np.zeros(3)
    np.add.at(want, clip(I1, 3), np.arange(1.0, 7.0))
    np.testing.assert_array_equal(np.asarray(g(X1, I1)), want)


def test_gradient_through_dropping_scatter_ignores_dropped_updates():
    def f(u, i):
        return (gj.zeros(3, dtype=gj.float64).index_add(0, i, u) * gj.tensor([1.0, 2, 3])).sum()
    g = np.asarray(gj.grad(f)(np.ones(6), I1))
    i = np.where(I1 < 0, I1 + 3, I1)
    want = np.where((i >= 0) & (i < 3), np.clip(i, 0, 2) + 1.0, 0.0)
    np.testing.assert_array_equal(g, want)


IMPERATIVE = {
    "getitem": lambda t, i: t[i],
    "gather": lambda t, i: t.gather(0, i),
    "index_select": lambda t, i: t.index_select(0, i),
    "index_add": lambda t, i: t.index_add(0, i, gj.ones(2)),
    "scatter_add": lambda t, i: t.scatter_add(0, i, gj.ones(2)),
}


@pytest.mark.parametrize("name", list(IMPERATIVE))
@pytest.mark.parametrize("pending", [False, True], ids=["realised", "pending"])
def test_imperative_out_of_bounds_raises_torch_index_error(name, pending):
    t = gj.tensor([1.0, 2.0, 3.0])
    i = gj.tensor([1, 2]) * 3 - 1 if pending else gj.tensor([2, 5])     # [2, 5] either way
    # PyTorch 2.13: IndexError for x[i] and index_select, RuntimeError for the others
    error = IndexError if name in ("getitem", "index_select") else RuntimeError
    with pytest.raises(error, match="index 5 is out of bounds for dimension 0 with size 3"):
        IMPERATIVE[name](t, i)


def test_imperative_pending_in_bounds_index_works():
    t = gj.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(t[gj.tensor([1, 2]) - 1].numpy(), [1.0, 2.0])
