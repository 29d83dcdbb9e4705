"""np.asarray(t) of a computed Tensor is a read-only view of its buffer (no copy, as JAX's),
and only where nothing can write that buffer later: values the same as the copy's, writes
refused, later runs (the recycling of large outputs included) leave it unchanged, and a
writable value (from_numpy, numpy()), np.array(t) and a dtype change still copy."""
import numpy as np
import pytest

import gradjit as gj
from runtime.executable import RECYCLE_BYTES, read_only_owner

BIG = RECYCLE_BYTES // 4 + 1024          # float32 elements: outputs large enough to recycle


def _step(x, w):
    return gj.tanh(x * w) * 2.0, gj.exp(-x)


def _args(seed, n=BIG):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32) for _ in range(2)]


def test_view_shares_the_result_buffer_and_matches_a_copy():
    x, w = _args(0)
    out, _ = gj.jit(_step)(x, w)
    a = np.asarray(out)
    assert np.shares_memory(a, out._expr.data)
    assert not a.flags.writeable
    np.testing.assert_allclose(a, np.tanh(x * w) * 2.0, rtol=1e-6, atol=1e-7)
    assert a.tobytes() == np.array(out).tobytes()


def test_writes_are_refused_and_cannot_be_enabled():
    out, _ = gj.jit(_step)(*_args(1, 64))
    a = np.asarray(out)
    saved = np.array(out)
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 5.0
    with pytest.raises(ValueError):
        a.flags.writeable = True
    assert np.asarray(out).tobytes() == saved.tobytes() == a.tobytes()


@pytest.mark.parametrize("keep_tensor", [True, False])
def test_later_runs_leave_the_view_unchanged(keep_tensor):
    """The Executable writes a large output of its previous call again once nobody holds
    it: the view must count as holding it, with or without the Tensor alive."""
    f = gj.jit(_step)
    out, other = f(*_args(2))
    a, b = np.asarray(out), np.asarray(other)
    saved_a, saved_b = a.copy(), b.copy()
    if not keep_tensor:
        del out, other
    for seed in range(3, 6):              # same signature: the same Executable runs again
        new, _ = f(*_args(seed))
        assert not np.shares_memory(np.asarray(new), a)
    np.testing.assert_array_equal(a, saved_a)
    np.testing.assert_array_equal(b, saved_b)


def test_recycling_still_happens_without_a_view():
    """The counter-check: with no view held, the next call writes the same buffer again
    (so the test above would catch a view that did not hold it)."""
    f = gj.jit(_step)
    out, _ = f(*_args(6))
    address = out._expr.data.ctypes.data
    del out
    new, _ = f(*_args(7))
    assert new._expr.data.ctypes.data == address


def test_np_array_and_dtype_change_copy_and_are_writable():
    out, _ = gj.jit(_step)(*_args(8, 32))
    c = np.array(out)
    assert c.flags.writeable and not np.shares_memory(c, out._expr.data)
    c[0] = 123.0
    assert np.asarray(out)[0] != 123.0
    d = np.asarray(out, dtype=np.float64)
    assert d.dtype == np.float64 and d.flags.writeable
    np.testing.assert_array_equal(d, np.asarray(out).astype(np.float64))
    e = np.asarray(out, dtype=np.float32)      # the same dtype: the view
    assert not e.flags.writeable and np.shares_memory(e, out._expr.data)


def test_writable_values_are_still_copied():
    """A from_numpy tensor and the array numpy() handed out are writable memory: a view
    would see later writes, so np.asarray copies them as before."""
    src = np.arange(6.0)
    t = gj.from_numpy(src)
    a = np.asarray(t)
    assert a.flags.writeable and not np.shares_memory(a, src)
    src[0] = 99.0
    assert a[0] == 0.0
    u = gj.ones(4) * 3.0
    host = u.numpy()
    b = np.asarray(u)
    assert not np.shares_memory(b, host)
    host[1] = -1.0
    assert b[1] == 3.0


def test_lazy_op_result_is_a_view_with_numpy_values():
    x = np.linspace(-1.0, 1.0, 7)
    t = gj.tensor(x) * 2.0 + 1.0
    a = np.asarray(t)
    assert not a.flags.writeable
    np.testing.assert_array_equal(a, x * 2.0 + 1.0)


def test_read_only_owner():
    owned = np.zeros(3)
    assert not read_only_owner(owned)
    owned.flags.writeable = False
    assert read_only_owner(owned) and read_only_owner(owned[1:])
    writable = np.zeros(3)
    view = writable[:]
    view.flags.writeable = False
    assert not read_only_owner(view)          # its owner can still be written
