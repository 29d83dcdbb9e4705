"""Hostile input to the imperative API: a clear exception or PyTorch's number, never a
silent wrong one (issue 13's reliability round). Each case here gave a wrong number before:

- `expand`/`broadcast_to` to a shape of 2^63 or more elements (PyTorch: "numel: integer
  multiplication overflow"): `ones(1, 1).expand(2**40, 2**40).sum()` was 0.0, because the
  optimiser's fold of a sum of copies counted them in int64 (ir/passes/layout.py), which
  wrapped 2^80 to 0; the fold now counts exactly (a float sum of 3 * 2^62 copies was
  negative);
- `tensor([2**63])`, `tensor([1, 2**63])`, `full((2,), 2**63)`, `tensor([2**31],
  dtype=int32)` wrapped silently (PyTorch raises); `tensor([1.5, 2**70])` raised a ragged
  list error (PyTorch: a float tensor);
- `one_hot` of a class >= num_classes or < 0 gave a row of zeros (PyTorch: RuntimeError).
"""
import os
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as torch
from tests.prim_samples import T, make_fn
from tracer import pipeline

F = torch.nn.functional
HERE = os.path.basename(__file__)


# ---- sizes past int64 ----------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: torch.ones(1, 1).expand(2**40, 2**40),
    lambda: torch.ones(3).expand(2**62, 3),
    lambda: torch.broadcast_to(torch.ones(1), (2**32, 2**31)),
])
def test_an_expand_whose_element_count_passes_int64_raises(make):
    with pytest.raises(RuntimeError, match=f"integer multiplication overflow.*{HERE}"):
        make()


def test_an_expand_just_under_int64_still_sums_exactly():
    t = torch.full((1, 1), 1.5).expand(2**31, 2**31)
    assert t.shape == (2**31, 2**31)
    assert t.sum().item() == 1.5 * 2.0**62
    assert t.mean().item() == 1.5


@pytest.mark.parametrize("dtype, shape, expected", [
    ("f32", (3, 2**62), np.float32(1.5) * np.float32(3 * 2**62)),   # was -1.5 * 2**62
    ("f64", (2**40, 2**40), 1.5 * 2.0**80),                            # was 0.0
    ("i64", (2**32, 2**32), 0),          # 2^64 copies of 1 in wrapping int64 arithmetic
    ("i64", (3, 2**62), -(2**62)),       # 3 * 2^62 wrapped
])
@pytest.mark.parametrize("splat", [False, True])
def test_the_fold_of_a_sum_of_copies_counts_them_exactly(dtype, shape, expected, splat):
    """reduce_sum of broadcast_in_dim (of a parameter, or of a constant: the splat path)
    folded to a product with the count: the count as a Python int, not an int64."""
    one = 1 if dtype == "i64" else 1.5
    np_dtype = {"f32": np.float32, "f64": np.float64, "i64": np.int64}[dtype]

    def body(b, x):
        src = b.const(one, dtype) if splat else x
        src = b.reshape(src, shape=(1,))
        wide = b.broadcast_in_dim(src, shape=shape, dims=(1,))
        return [b.reduce_sum(wide, axes=(0, 1))]
    fn = make_fn("sum_of_copies", [T(dtype, (1,))], body)
    (out,) = pipeline.run(fn, [np.array([one], np_dtype)])
    assert out.dtype == np_dtype and out.shape == ()
    assert out == np_dtype(expected)


# ---- numbers a dtype cannot hold -----------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: torch.tensor([2**63]), ValueError, "Overflow"),
    (lambda: torch.tensor(2**63), ValueError, "Overflow"),
    (lambda: torch.tensor([1, 2**63]), ValueError, "Overflow"),    # NumPy: float64 array
    (lambda: torch.tensor([[3], [-2**63 - 1]]), ValueError, "Overflow"),   # object array
    (lambda: torch.tensor([2**64]), ValueError, "Overflow"),
    (lambda: torch.tensor([2**31], dtype=torch.int32), RuntimeError, "int32 without overflow"),
    (lambda: torch.tensor([-2**31 - 1, 0], dtype=torch.int32), RuntimeError, "int32"),
    (lambda: torch.full((2,), 2**63), ValueError, "Overflow"),
    (lambda: torch.full((2,), 2**40, dtype=torch.int32), RuntimeError, "int32"),
])
def test_an_integer_the_dtype_cannot_hold_raises(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_integers_at_the_limits_and_huge_ints_in_float_tensors():
    limits = torch.tensor([-2**63, 2**63 - 1])
    assert limits.dtype == torch.int64 and limits.tolist() == [-2**63, 2**63 - 1]
    small = torch.tensor([2**31 - 1, -2**31], dtype=torch.int32)
    assert small.tolist() == [2**31 - 1, -2**31]
    mixed = torch.tensor([1.5, 2**70])
    assert mixed.dtype == torch.float32
    assert mixed.tolist() == [1.5, float(np.float32(2.0**70))]
    wide = torch.tensor([2**64, 1], dtype=torch.float64)
    assert wide.tolist() == [2.0**64, 1.0]
    assert torch.full((2,), 2**70, dtype=torch.float64).tolist() == [2.0**70] * 2
    with pytest.raises(ValueError, match="ragged|inhomogeneous|sequence"):
        torch.tensor([[1, 2], [3]])


# ---- indices -------------------------------------------------------------------------------

@pytest.mark.parametrize("index, num_classes, message", [
    ([0, 3], 3, "smaller than num_classes"),
    ([0, -1], 3, "non-negative"),
    ([0, -1], -1, "non-negative"),
])
def test_one_hot_of_a_class_out_of_range_raises(index, num_classes, message):
    with pytest.raises(RuntimeError, match=f"{message}.*{HERE}"):
        F.one_hot(torch.tensor(index), num_classes)


@pytest.mark.parametrize("repeats", [[1, -1, 2], -2])
def test_negative_repeats_say_so(repeats):
    with pytest.raises(ValueError, match=f"repeats can not be negative, got -\\d.*{HERE}"):
        torch.repeat_interleave(torch.arange(3), torch.tensor(repeats) if isinstance(
            repeats, list) else repeats)


def test_one_hot_in_range_is_unchanged():
    out = F.one_hot(torch.tensor([[0, 2], [1, 1]]), 3)
    np.testing.assert_array_equal(out.numpy(), np.eye(3, dtype=np.int64)[[[0, 2], [1, 1]]])


OPS = {
    # name: (gradjit call, NumPy reference, lowest valid index: -1 where negative ones count
    # from the end (x[i], take_along_dim), 0 for an IndexError (as PyTorch: index_select,
    # embedding, gather))
    "index_select": (lambda x, i: torch.index_select(x, 0, i), lambda x, i: x[i], 0),
    "embedding": (lambda x, i: F.embedding(i, x), lambda x, i: x[i], 0),
    "getitem": (lambda x, i: x[i], lambda x, i: x[i], -1),
    "gather": (lambda x, i: torch.gather(x, 0, i.reshape(-1, 1).expand(-1, x.shape[1])),
               lambda x, i: x[i], 0),
    "take_along_dim": (lambda x, i: torch.take_along_dim(x, i.reshape(-1, 1), 0),
                       lambda x, i: x[i], -1),     # (the index broadcast along axis 1)
}


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(sorted(OPS)), rows=st.integers(1, 6), cols=st.integers(1, 4),
       data=st.data(), checked=st.booleans())
def test_index_ops_raise_or_match_numpy_for_any_index(op, rows, cols, data, checked):
    """Indices drawn across [-2 rows, 2 rows): PyTorch's IndexError exactly when one is out
    of range, else NumPy's values; with GRADJIT_BOUNDS_CHECK on or off."""
    call, ref, low = OPS[op]
    index = data.draw(st.lists(st.integers(-2 * rows, 2 * rows - 1), min_size=1, max_size=6))
    x = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) - 3.5
    ok = all((low * rows if low else 0) <= i < rows for i in index)
    with _bounds_check(checked):
        if not ok:
            # (PyTorch: RuntimeError for gather, IndexError for the others)
            with pytest.raises(RuntimeError if op == "gather" else IndexError,
                               match="out of bounds"):
                np.asarray(call(torch.tensor(x), torch.tensor(index)))
            return
        got = np.asarray(call(torch.tensor(x), torch.tensor(index)))
    np.testing.assert_array_equal(got, ref(x, np.array(index)))


@contextmanager
def _bounds_check(on: bool):
    """GRADJIT_BOUNDS_CHECK set for the block (as a new process would read it)."""
    from runtime import config
    saved = os.environ.get("GRADJIT_BOUNDS_CHECK")
    os.environ["GRADJIT_BOUNDS_CHECK"] = "1" if on else "0"
    config.reload()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["GRADJIT_BOUNDS_CHECK"]
        else:
            os.environ["GRADJIT_BOUNDS_CHECK"] = saved
        config.reload()


# ---- a subprocess sweep: no crash, no hang, the error or the number PyTorch gives ----------

SWEEP = r'''
import sys, numpy as np
import gradjit as torch
F = torch.nn.functional
CASES = [
    ("torch.ones(1, 1).expand(2**40, 2**40).sum()", "RuntimeError"),
    ("torch.ones(2**62, 4)", "ValueError"),
    ("torch.arange(6).view(2**62, 2**62)", "ShapeError"),
    ("torch.ones(2).repeat(2**62)", "IndexRangeError"),
    ("torch.zeros(0, 3).sum(0)", [0.0, 0.0, 0.0]),
    ("torch.mm(torch.zeros(3, 0), torch.zeros(0, 4)).sum()", 0.0),
    ("torch.arange(5.).index_select(0, torch.tensor([1, 7]))", "IndexError"),
    ("torch.arange(5.).index_select(0, torch.tensor([-6]))", "IndexError"),
    ("F.embedding(torch.tensor([0, 10]), torch.ones(5, 2))", "IndexError"),
    ("torch.arange(6.).reshape(2, 3).gather(1, torch.tensor([[0, 3], [1, 2]]))", "RuntimeError"),
    ("torch.arange(5.)[torch.tensor([0, 5])]", "IndexError"),
    ("torch.zeros(3).scatter_add(0, torch.tensor([5]), torch.ones(1))", "RuntimeError"),
    ("torch.zeros(3).index_add(0, torch.tensor([3]), torch.ones(1))", "RuntimeError"),
    ("F.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3]))", "IndexError"),
    ("F.one_hot(torch.tensor([0, 3]), 3)", "RuntimeError"),
    ("torch.tensor([2**63])", "ValueError"),
    ("torch.tensor([5, 3]) // torch.tensor([0, 2])", "RuntimeError"),
    ("(lambda x: x.add_(x.flip(0)))(torch.arange(5.))", [4.0, 4.0, 4.0, 4.0, 4.0]),
    ("(lambda a: a.copy_(a.t()))(torch.arange(4.).reshape(2, 2)).reshape(-1)",
     "RuntimeError"),                            # (PyTorch 2.13: the operand partly overlaps)
    ("torch.mm(torch.arange(12.).reshape(3, 4)[:, ::2], torch.arange(6.).reshape(2, 3))"
     ".reshape(-1)", [6.0, 8.0, 10.0, 18.0, 28.0, 38.0, 30.0, 48.0, 66.0]),
    ("torch.tensor([1.0, float('nan'), 3.0]).max()", float("nan")),
]
for code, want in CASES:
    print(code, flush=True)
    try:
        got = np.asarray(eval(code), np.float64).tolist()    # (a lazy error shows here)
    except Exception as e:
        got = type(e).__name__
    same = got == want or (isinstance(want, float) and want != want and got != got)
    if not same:
        print("WRONG", code, got, want, flush=True)
        sys.exit(3)
print("ALL OK")
'''


@pytest.mark.parametrize("checked", ["0", "1"])
def test_a_sweep_of_hostile_calls_in_a_fresh_process(checked, tmp_path):
    """Each call raises PyTorch's error class or gives its value; run in a subprocess (a
    crash there fails the test, naming the call) with GRADJIT_BOUNDS_CHECK off and on."""
    env = dict(os.environ, GRADJIT_BOUNDS_CHECK=checked, GRADJIT_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=600)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0 and last == "ALL OK", (proc.returncode, last, proc.stderr[-2000:])
