"""Random PyTorch programs (tests/fuzz_programs.py): mixes of elementwise ops, reductions,
views, indexing, in-place updates, reads, backward / autograd.grad and no-grad updates,
each body repeated with fresh data so the caches engage.

Without PyTorch: each program's records are bitwise the same with whole-step capture on and
off, and with the backward follow on, keyed or emitting every program, and the counters
show those paths ran. With PyTorch (GRADJIT_TORCH_PYTHON names an interpreter that has it,
e.g. /tmp/refvenv/bin/python): the programs agree with PyTorch 2.13 (tests/fuzz_compare.py;
`python -m tests.fuzz_compare N FIRST` for long runs). The regressions below are programs
the fuzzer found, with PyTorch 2.13's values and error classes recorded."""
import os

import numpy as np
import pytest

import gradjit as torch
from tests.api.capture_check import plain_capture, run_follow_mode, run_off_and_on  # noqa: F401
from tests.fuzz_compare import compare, filename, torch_results
from tests.fuzz_programs import program
from tests.fuzz_run import run
from tracer import op_memo, step_capture
from tracer.autograd import inplace, replay

SEEDS = range(30)


def _run(seed):
    return run(program(seed), torch, seed, filename(seed))


def _loop():
    return [_run(s) for s in SEEDS]


def _same_bits(a, b, where=""):
    """Records equal bit for bit (arrays by dtype and bytes, NaN included)."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same_bits(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same_bits(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where


@pytest.mark.usefixtures("plain_capture")
def test_programs_give_the_same_bits_with_capture_on_and_off():
    on, delta, off = run_off_and_on(_loop, stats=(step_capture.STATS, op_memo.STATS,
                                                   inplace.STATS))
    for seed, a, b in zip(SEEDS, on, off):
        _same_bits(a, b, f"seed {seed}")
    # the op memo replayed templates, in-place ops took the direct path, and the "memo"
    # programs (seeds 2, 18, 20, 22 here) formed tapes that later steps followed
    assert delta["replays"] > 0 and delta["direct"] > 0
    assert delta["tapes"] > 0 and delta["reads"] > 0
    # and some statements were refused (recorded, or ending their program)
    assert sum(r["error"] is not None or any(tag == "error" for tag, _ in r["records"])
               for r in on) >= 1


def test_programs_give_the_same_bits_followed_keyed_and_emitted():
    runs = {}
    for mode in ("follow", "keyed", "emit"):
        before = dict(replay.STATS)
        runs[mode], stats = run_follow_mode(_loop, mode)
        if mode == "follow":
            assert stats["followed"] > 0
        if mode == "keyed":
            assert replay.STATS["hits"] > before["hits"]
    for mode in ("keyed", "emit"):
        for seed, a, b in zip(SEEDS, runs["follow"], runs[mode]):
            _same_bits(a, b, f"seed {seed} {mode}")


@pytest.mark.skipif(not os.environ.get("GRADJIT_TORCH_PYTHON"),
                    reason="set GRADJIT_TORCH_PYTHON to an interpreter with PyTorch 2.13")
def test_programs_agree_with_pytorch():
    seeds = range(200)
    ref = torch_results(seeds, os.environ["GRADJIT_TORCH_PYTHON"])
    bad = {s: compare(ref[s], _run(s)) for s in seeds}
    assert not {s: d for s, d in bad.items() if d}


# ---- regressions the fuzzer found (PyTorch 2.13's values and classes recorded)

def test_masked_fill_in_place():          # was AttributeError
    x = torch.tensor([1.0, -2.0, 3.0])
    x.masked_fill_(x < 0, 0.5)
    assert x.tolist() == [1.0, 0.5, 3.0]


def test_max_and_min_of_bools():           # was ShapeError (reduce_max needs numbers)
    b = torch.tensor([[True, False], [False, False]])
    assert b.amax(dim=1).tolist() == [True, False]
    assert b.amin(dim=0).tolist() == [False, False]
    assert b.max().item() is True and b.min().item() is False
    assert b.amax().dtype == torch.bool


@pytest.mark.parametrize("make, cls", [
    (lambda: torch.tensor([1, 2]).mean(), RuntimeError),                    # was TypeError
    (lambda: -torch.tensor([True]), RuntimeError),                          # was TypeError
    (lambda: torch.tensor([True]) - torch.tensor([True]), RuntimeError),    # was TypeError
    (lambda: torch.where(torch.ones(2), 1.0, 0.0), RuntimeError),           # was TypeError
    (lambda: torch.tensor([2]) ** -1, RuntimeError),                        # was ValueError
    (lambda: torch.tensor([True]).abs(), NotImplementedError),              # was TypeError
    (lambda: torch.ones(3).expand(2, 3).add_(1), RuntimeError),             # was accepted
])
def test_pytorchs_error_class_naming_the_line(make, cls):
    with pytest.raises(Exception) as info:
        make()
    assert isinstance(info.value, cls)
    assert info.type is cls or not issubclass(info.type, (TypeError, ValueError)) or \
        cls in info.type.__mro__


def test_a_write_to_its_base_shows_through_an_expand_and_its_views():   # seed 339
    w = torch.tensor([[0.5, -1.0, 0.25]], requires_grad=True)
    h = w * 1
    e = h.expand(2, 3)
    v = e[0:2, 1:3]
    h *= 3                                 # was: v kept h's old values, silently
    loss = (v * v).sum()
    loss.backward()
    assert v.tolist() == [[-3.0, 0.75], [-3.0, 0.75]]
    assert loss.item() == 19.125
    assert w.grad.tolist() == [[0.0, -36.0, 9.0]]
    e.sum().item()                          # read, then written again: still a view
    h += 1
    assert e.tolist() == [[2.5, -2.0, 1.75]] * 2


def test_the_expand_fix_in_a_loop_matches_capture_off():
    def loop():
        out = []
        for i in range(12):
            h = torch.tensor([[0.5, -1.0, 0.25]]) * (i + 1)
            e = h.expand(3, 3)
            col = e[:, 2]
            h.add_(1)
            out.append(col.numpy().copy())
        return out
    on, _, off = run_off_and_on(loop)
    _same_bits(on, off)
    assert [float(c[0]) for c in on] == [0.25 * (i + 1) + 1 for i in range(12)]


ROW0 = [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize("write, after", [       # PyTorch 2.13's answers (None: refused)
    ("x[torch.tensor([0])] = torch.tensor([1.0])", None),       # was cast silently
    ("x[[0]] = torch.tensor([1.0])", None),
    ("x[0, torch.tensor([1])] = torch.tensor([1.0])", None),
    ("x[torch.tensor([0])] = torch.tensor(1)", None),
    ("x[torch.tensor([True, False])] = torch.tensor([1.0, 2.0, 3.0])", None),
    ("x[torch.tensor([True, False])] = torch.tensor([1.0])", ROW0),      # masked_fill_
    ("x[x > 0] = torch.tensor(1.0)", [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
    ("x[torch.tensor(0)] = torch.tensor([1.0])", ROW0),                  # basic: copy_
    ("x[0] = torch.tensor([1.0])", ROW0),
    ("x[torch.tensor([1])] = 2", [[0.0, 1.0, 0.0], [2.0, 2.0, 2.0]]),
    ("x[torch.tensor([0])] = torch.tensor([[1.0]], dtype=torch.float64)", ROW0),
])
def test_an_advanced_index_write_of_another_dtype_is_refused(write, after):
    x = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    if after is None:
        with pytest.raises(RuntimeError, match="Index put requires the source and destination "
                                               "dtypes match, got Double for the destination"):
            exec(write)
        after = [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    else:
        exec(write)
    assert x.dtype == torch.float64 and x.tolist() == after


def test_an_index_write_out_of_order_puts_each_value_at_its_index():   # seed 6254
    x = torch.zeros(3, requires_grad=True)
    v = torch.tensor([7.0, 8.0], requires_grad=True)
    y = x * 1
    y[torch.tensor([2, 0])] = v * torch.tensor([1.0, 10.0])      # was [70, 0, 8]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert y.tolist() == [80.0, 0.0, 7.0]
    assert x.grad.tolist() == [0.0, 2.0, 0.0] and v.grad.tolist() == [3.0, 10.0]
    rows = torch.zeros(2, 3)
    rows[torch.tensor([-1, 0])] = torch.tensor([[1.0, 2, 3], [4, 5, 6]])
    assert rows.tolist() == [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]]
    z = torch.zeros(3)
    z[torch.tensor([2, 0, 2])] = torch.tensor([1.0, 2.0, 3.0])     # the last write wins
    assert z.tolist() == [2.0, 0.0, 3.0]


def _square_after_a_backward_loop():
    """Seeds 6303 then 6304, minimised: a followed event whose two operands are one fresh
    tensor (`x * x`) checked its second operand against the first's note before noting it
    (IndexError in the written event code, tracer/step_follow_code.py)."""
    w = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    out = []
    for _ in range(12):
        loss = (w * w).sum()
        out.append(loss.item())
        loss.backward()
        w.grad.zero_()
    p = torch.tensor(0.5)
    for it in range(12):
        p.clamp_(min=0)
        x = torch.tensor(np.full((3, 3), it / 8.0, dtype=np.float32))
        x2 = x * x
        out.append((p * x2).sum() + x2.sum())
        out[-1] = out[-1].item()
        p.mul_(0.99)
    return out


@pytest.mark.usefixtures("plain_capture")
def test_a_followed_square_of_a_fresh_tensor():
    on, delta, off = run_off_and_on(_square_after_a_backward_loop)
    assert on == off
    assert delta["tapes"] > 0 and delta["reads"] > 0
    assert on[-1] == pytest.approx(24.63299560546875)      # PyTorch 2.13: 24.63299560546875


PRODUCTS = [("mm", [(2, 3), (3, 4)]), ("mv", [(2, 3), (3,)]), ("dot", [(3,), (3,)]),
            ("bmm", [(2, 2, 3), (2, 3, 4)]), ("matmul", [(2, 3), (3,)]),
            ("matmul", [(3,), (3, 2)]), ("matmul", [(2, 2, 3), (3, 4)]),
            ("inner", [(3,), (3,)]), ("outer", [(3,), (2,)])]


@pytest.mark.parametrize("name, shapes", PRODUCTS)
@pytest.mark.parametrize("changed", [0, 1])
def test_a_product_checks_only_the_operand_a_needed_gradient_reads(name, shapes, changed):
    """Seed 6190: `y = a @ b` with only a requiring grad saves b alone in PyTorch 2.13, so
    changing a in place before backward is no error (gradjit raised 'modified by an
    inplace operation'); with both requiring grad it is, as in PyTorch."""
    f = getattr(torch, name)

    def grad(change: bool):
        leaves = [torch.ones(s, requires_grad=(i == changed)) for i, s in enumerate(shapes)]
        xs = [leaf * 1 for leaf in leaves]
        y = f(*xs)
        if change:
            xs[changed].add_(1)
        y.sum().backward()
        return leaves[changed].grad.numpy()
    # (a bilinear product: the operand's own value does not enter its gradient)
    np.testing.assert_array_equal(grad(True), grad(False))
    both = [torch.ones(s, requires_grad=True) for s in shapes]
    xs = [leaf * 1 for leaf in both]
    y = f(*xs)
    xs[changed].add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
