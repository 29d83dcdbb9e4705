"""An expand is a view of its base, as in PyTorch, at any size (docs/compat.md listed an
expand past 65,536 elements as a copy: a later write to its base did not reach it).

A view's positions are a NumPy strided view of an arange of its root (tracer/autograd/
views.py): an expand's repeated positions are zero strides, so no table of the expand's size
is made, and the values, gradients and refusals match PyTorch 2.13's, recorded in
recorded/overlap.json by recorded/record_overlap.py.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as torch
from tests.api import overlap_programs
from tracer.autograd import overlap, views

RECORDED = json.loads((Path(__file__).parent / "recorded" / "overlap.json").read_text())
EXPAND_PROGRAMS = [p for p in overlap_programs.PROGRAMS if not p.__name__.startswith("overlap")]


def same(a, b) -> bool:
    """Equal JSON-like results, NaN equal to NaN."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a:
        return b != b
    return a == b


@pytest.mark.parametrize("program", EXPAND_PROGRAMS, ids=lambda p: p.__name__)
def test_expand_programs_match_pytorch(program):
    got = overlap_programs.run(program, torch)
    assert same(got, RECORDED[program.__name__]), (got, RECORDED[program.__name__])


def test_a_write_to_the_base_of_a_large_expand_shows_in_it_and_its_views():
    h = torch.arange(300.)
    e = h.expand(1000, 300)                    # 300,000 elements: a copy before
    s, col = e[10:12, 1:4], e.t()[7]
    h.mul_(2)
    assert e[999, 299].item() == 598.0
    assert s.tolist() == [[2.0, 4.0, 6.0]] * 2
    assert col.tolist() == [14.0] * 1000


def test_an_expand_of_1e9_elements_from_1e3_allocates_neither_its_size_nor_a_table():
    code = textwrap.dedent("""
        import resource
        import gradjit as torch
        from tracer.autograd import overlap, views
        h = torch.arange(1000.)
        e = h.expand(10 ** 6, 1000)
        w = e.t()[2]
        h.mul_(2)
        assert w[:3].tolist() == [4.0] * 3 and e[5, 1:4].tolist() == [2.0, 4.0, 6.0]
        assert overlap.repeats(views.positions(e))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) < 1000     # MB: 8 GB for an int64 table of 1e9


def _fd_grad(f, x: np.ndarray, eps=1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = eps
        g.flat[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def _views_after_write(h_np: np.ndarray, w_np: np.ndarray, want_grad: bool):
    """A loss through an expand, a slice, a t() and a copying reshape of it, after the base
    was changed in place (and a part of the expand written)."""
    h = torch.tensor(h_np, dtype=torch.float64, requires_grad=want_grad)
    w = torch.tensor(w_np, dtype=torch.float64)
    b = h * 1
    e = b.expand(3, 2, 4)
    s, t, r = e[1:, :, 2:], e.transpose(0, 2), e.transpose(0, 2).reshape(24)
    b.mul_(3)
    e[2, 1, 0] = b[0, 0] * 3               # a part that does not repeat: a view write
    loss = (s * s).sum() + (t * w.reshape(4, 2, 3)).sum() + (r.sin() * w).sum() + \
        (e * e).sum()
    if want_grad:
        loss.backward()
        return h.grad.numpy()
    return loss.item()


def test_gradients_through_views_of_an_expand_match_finite_differences():
    rng = np.random.default_rng(0)
    h, w = rng.normal(size=(2, 1)), rng.normal(size=24)
    got = _views_after_write(h, w, True)
    want = _fd_grad(lambda x: _views_after_write(x, w, False), h)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


_VIEWS = {             # (torch view, the same on NumPy's broadcast_to array)
    "slice": (lambda a: a[..., 1:], lambda a: a[..., 1:]),
    "t": (lambda a: a.transpose(-1, 0), lambda a: np.swapaxes(a, -1, 0)),
    "select": (lambda a: a[0], lambda a: a[0]),
    "unsqueeze": (lambda a: a[None], lambda a: a[None]),
    "expand": (lambda a: a[None].expand(2, *a.shape),
               lambda a: np.broadcast_to(a[None], (2, *a.shape))),
}


@settings(max_examples=40, deadline=None)
@given(base=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       lead=st.lists(st.integers(1, 3), max_size=2), grow=st.data(),
       chain=st.lists(st.sampled_from(sorted(_VIEWS)), max_size=3), scale=st.integers(2, 5))
def test_views_of_an_expand_see_a_later_write_to_the_base(base, lead, grow, chain, scale):
    """Any chain of views of any expand shows the base's later in-place change, as NumPy's
    broadcast_to views of the changed array do."""
    shape = tuple(lead) + tuple(grow.draw(st.sampled_from([1, 2, 4])) if d == 1 else d
                                for d in base)
    start = np.arange(np.prod(base), dtype=np.float64).reshape(base)
    h = torch.tensor(start)
    v, want = h.expand(*shape), np.broadcast_to(start * scale, shape)
    for name in chain:
        if name in ("select", "t", "slice") and v.ndim == 0:
            continue
        v, want = _VIEWS[name][0](v), _VIEWS[name][1](want)
    h.mul_(scale)
    assert tuple(v.shape) == want.shape
    np.testing.assert_array_equal(v.numpy(), want)


def test_a_write_into_a_repeating_expand_names_the_users_line():
    e = torch.arange(3.).expand(2, 3)
    with pytest.raises(RuntimeError, match=r"more than one element of the written-to tensor "
                       r".*\(at test_expand_views.py:\d+\)"):
        e.add_(1)


def test_a_reshape_pytorch_copies_has_a_storage_of_its_own():
    h = torch.arange(3.).reshape(3, 1)
    e = h.expand(3, 2)
    copied, viewed = e.reshape(6), e.reshape(3, 2, 1)
    assert copied._member is None and viewed._member is not None
    assert viewed._storage is h._storage and copied._storage is not h._storage
    assert views.positions(viewed).shape == (3, 2, 1)


def test_repeats_are_read_from_strides_not_by_sorting_positions():
    where = np.broadcast_to(np.arange(3), (4, 3))
    assert overlap.repeats(where) and not overlap.repeats(where[0])
    assert overlap.repeats(where[:, :1]) and not overlap.repeats(where[:1])
    assert overlap.distinct_core(where) == (slice(0, 1), slice(None))
