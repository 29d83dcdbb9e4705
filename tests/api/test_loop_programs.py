"""Training loops whose programs must stop changing after the first steps (a compile per
batch made word_language_model take seconds per batch): a data tensor walked with Python
int offsets (tracer/lift_slices.py) and an RNN state carried across batches with
`h = h.detach()` (realize and backward keep the live results of a multi-result op)."""
import numpy as np

import gradjit as gj
import runtime


def _misses() -> int:
    return runtime.cache_info()["misses"]


def _slice_loop(steps: range):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((200, 3)).astype(np.float32)
    source = gj.tensor(data)
    w = gj.zeros(3, requires_grad=True)
    losses, misses = [], []
    for i in steps:
        x = source[i:i + 8]
        loss = ((x @ w - 1.0) ** 2).mean()
        loss.backward()
        with gj.no_grad():
            w -= 0.1 * w.grad
        w.grad = None
        losses.append(loss.item())
        misses.append(_misses())
    return data, losses, misses, w.detach().numpy()


def test_python_int_offsets_into_a_data_tensor_compile_once():
    steps = range(0, 160, 8)
    data, losses, misses, w = _slice_loop(steps)
    assert misses[-1] == misses[3], "a later batch compiled a new program"
    ref, want = np.zeros(3), []
    for i in steps:                        # the same loop in float64 NumPy
        x = data[i:i + 8].astype(np.float64)
        r = x @ ref - 1.0
        want.append(np.mean(r ** 2))
        ref = ref - 0.1 * (2.0 / 8) * x.T @ r
    np.testing.assert_allclose(losses, want, rtol=1e-5)
    np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)


def test_integer_index_rows_compile_once_and_views_still_write_through():
    source = gj.tensor(np.arange(40.0, dtype=np.float32).reshape(20, 2))
    seen = []
    for i in range(20):
        seen.append((source[i] * 2.0).sum().item())
        if i == 3:
            before = _misses()
    assert _misses() == before
    assert seen == [float(4 * i + 1) * 2.0 for i in range(20)]
    d = gj.zeros(6)
    d[2:4].add_(1.0)
    assert d.tolist() == [0, 0, 1, 1, 0, 0]


def _lstm_loop(steps: int, copy_state: bool):
    gj.manual_seed(0)
    lstm, head = gj.nn.LSTM(3, 4), gj.nn.Linear(4, 1)
    params = list(lstm.parameters()) + list(head.parameters())
    opt = gj.optim.SGD(params, lr=0.1)
    xs = gj.tensor(np.random.default_rng(1).standard_normal((steps, 5, 2, 3))
                   .astype(np.float32))
    hidden = (gj.zeros(1, 2, 4), gj.zeros(1, 2, 4))
    misses = []
    for k in range(steps):
        if copy_state:           # the reference: the state as fresh data each batch
            hidden = tuple(gj.tensor(h.detach().numpy().copy()) for h in hidden)
        else:                    # word_language_model's repackage_hidden
            hidden = tuple(h.detach() for h in hidden)
        out, hidden = lstm(xs[k], hidden)
        loss = head(out).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        misses.append(_misses())
    return misses, [p.detach().numpy() for p in params]


def test_an_rnn_state_carried_across_batches_does_not_grow_the_programs():
    misses, got = _lstm_loop(8, copy_state=False)
    assert misses[-1] == misses[3], "the programs grew with the carried state"
    _, want = _lstm_loop(8, copy_state=True)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_evaluation_loop_with_a_carried_state_compiles_once():
    gj.manual_seed(0)
    lstm = gj.nn.GRU(3, 4)
    xs = gj.randn(10, 5, 2, 3)
    hidden = gj.zeros(1, 2, 4)
    total, misses = 0.0, []
    with gj.no_grad():
        for k in range(10):
            out, hidden = lstm(xs[k], hidden.detach())
            total += out.sum().item()
            misses.append(_misses())
    assert misses[-1] == misses[3]
