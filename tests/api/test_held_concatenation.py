"""A concatenation a Tensor holds is computed and kept when a read passes through it
(tracer/realize_plans.py held): minGPT's and nanoGPT's `generate` grow `idx = cat((idx,
nxt), 1)` and read only `idx[:, -block:]`; without keeping idx every read recomputed the
whole chain of cats since the start (a program one cat longer per token)."""
import numpy as np
import gradjit as gj
from tracer import realize_plans
from tracer import tensor as tensor_module


def _autoregressive(steps: int, programs: list | None = None):
    """A generate-shaped loop; programs collects the op count of every program it runs."""
    w = gj.tensor(np.linspace(-1.0, 1.0, 40, dtype=np.float32).reshape(10, 4))
    idx = gj.tensor([[1, 2, 3]])
    with gj.no_grad():
        for _ in range(steps):
            cond = idx if idx.size(1) <= 5 else idx[:, -5:]
            scores = w[cond].sum(dim=(1, 2))                  # (1,)
            nxt = (scores * 7).long().remainder(10).reshape(1, 1)
            nxt.tolist()                                          # a read of the crop's chain
            idx = gj.cat((idx, nxt), dim=1)
    return idx


def _reference(steps: int) -> np.ndarray:
    w = np.linspace(-1.0, 1.0, 40, dtype=np.float32).reshape(10, 4)
    idx = [1, 2, 3]
    for _ in range(steps):
        cond = idx[-5:]
        score = np.float32(w[cond].sum(dtype=np.float32))
        idx.append(int(np.int64(score * np.float32(7)) % 10))
    return np.array([idx])


def test_the_growing_sequence_is_kept_and_the_read_programs_stay_small(monkeypatch):
    steps = 30
    kept = []
    find = realize_plans.held
    monkeypatch.setattr(realize_plans, "held",
                        lambda walk, candidates: kept.append(find(walk, candidates)) or kept[-1])
    idx = _autoregressive(steps)
    np.testing.assert_array_equal(idx.numpy(), _reference(steps))
    assert sum(len(k) for k in kept) >= steps - 5      # idx kept at (nearly) every read


def test_without_keeping_concatenations_the_chain_grows(monkeypatch):
    sizes = {True: [], False: []}
    original = tensor_module.run_function
    for flag in (True, False):
        monkeypatch.setattr(realize_plans, "HELD_CONCATENATIONS", flag)
        monkeypatch.setattr(tensor_module, "run_function",
                            lambda fn, arrays, out=sizes[flag]: out.append(
                                str(fn).count(" concatenate ")) or original(fn, arrays))
        got = _autoregressive(30)
        np.testing.assert_array_equal(got.numpy(), _reference(30))     # the same numbers
    # each read's program holds one or two cats when idx is kept, ~30 when it is not
    assert max(sizes[True]) <= 2 and max(sizes[False]) >= 25


def test_a_concatenation_nobody_holds_is_not_kept(monkeypatch):
    kept = []
    find = realize_plans.held
    monkeypatch.setattr(realize_plans, "held",
                        lambda walk, candidates: kept.append(find(walk, candidates)) or kept[-1])
    a, b = gj.tensor([[1.0, 2.0]]), gj.tensor([[3.0]])
    total = (gj.cat((a, b), dim=1) * 2).sum().item()  # (not inside assert: pytest's rewrite
    assert total == 12.0                              # would hold the cat's Tensor)
    held_cat = gj.cat((a, b), dim=1)
    assert held_cat[:, 0].tolist() == [1.0]
    assert [len(k) for k in kept] == [0, 1] and held_cat._expr.data is not None
    np.testing.assert_array_equal(held_cat.numpy(), np.array([[1.0, 2.0, 3.0]], np.float32))


def test_a_kept_concatenation_inside_an_autograd_graph_keeps_its_gradient():
    a = gj.tensor([1.0, 2.0], requires_grad=True)
    b = gj.tensor([3.0], requires_grad=True)
    c = gj.cat((a * 2, b * b))
    assert c[-1].item() == 9.0                          # a read through the held cat
    (c * gj.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert a.grad.tolist() == [2.0, 4.0] and b.grad.tolist() == [18.0]
