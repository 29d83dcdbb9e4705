"""gradjit.compile(model_or_fn): gradients equal eager, optimizer updates seen, one trace per
train/eval mode, no_grad, decorator forms, the PyTorch-style wrapper."""
import numpy as np
import pytest

import gradjit as gj


def mlp():
    gj.manual_seed(0)
    return gj.nn.Sequential(gj.nn.Linear(3, 8), gj.nn.Tanh(), gj.nn.Linear(8, 1))


def grads(model):
    return [p.grad.detach().numpy().copy() for p in model.parameters()]


class Counting(gj.nn.Module):
    """forward's Python body runs only while tracing: the counter counts traces."""

    def __init__(self):
        super().__init__()
        self.lin = gj.nn.Linear(3, 2)
        self.inner = gj.nn.Identity()
        self.traces = 0

    def forward(self, x):
        self.traces += 1
        return self.lin(x).sum() * (1.0 if self.inner.training else 2.0)


def test_gradients_equal_eager():
    model = mlp()
    x, y = gj.randn(16, 3), gj.randn(16, 1)
    compiled = gj.compile(model)
    ((compiled(x) - y) ** 2).mean().backward()
    got = grads(model)
    model.zero_grad()
    ((model(x) - y) ** 2).mean().backward()
    for a, b in zip(got, grads(model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert all(np.abs(g).sum() > 0 for g in got)


def test_training_matches_eager_and_sees_optimizer_updates():
    """Ten SGD steps through the compiled module equal ten eager steps: each call reads the
    parameters' current values, and the forward is traced once."""
    x, y = gj.randn(16, 3), gj.randn(16, 1)
    losses = {}
    for kind in ("eager", "compiled"):
        model = mlp()
        run = gj.compile(model) if kind == "compiled" else model
        opt = gj.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses[kind] = []
        for _ in range(10):
            opt.zero_grad()
            loss = ((run(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses[kind].append(loss.item())
    np.testing.assert_allclose(losses["compiled"], losses["eager"], rtol=1e-5)
    assert losses["compiled"][-1] < losses["compiled"][0]


def test_one_trace_per_mode_and_no_grad():
    model = Counting()
    compiled = gj.compile(model)
    x = gj.randn(4, 3)
    for _ in range(3):
        compiled(x).backward()
    assert model.traces == 1
    compiled.eval()
    assert not model.training and not model.inner.training
    a, b = compiled(x), compiled(x)
    assert model.traces == 2 and a.item() == b.item()
    np.testing.assert_allclose(a.item(), 2 * model.lin(x).sum().item(), rtol=1e-5)
    with gj.no_grad():
        out = compiled(x)
    assert out.grad_fn is None and not out.requires_grad
    compiled.train()
    compiled(x)
    assert model.traces == 2               # train mode's program is reused


def test_the_wrapper_looks_like_torch_compiles():
    model = mlp()
    compiled = gj.compile(model, mode="max-autotune", fullgraph=True, dynamic=False)
    assert list(compiled.parameters()) == list(model.parameters())
    assert list(compiled.state_dict())[0] == "_orig_mod.0.weight"
    assert compiled._orig_mod is model and compiled.training is model.training
    assert repr(compiled).startswith("OptimizedModule(\n  (_orig_mod): Sequential(")
    assert gj.compile(model, disable=True) is model
    with pytest.raises(RuntimeError, match="Unrecognized mode=fast"):
        gj.compile(model, mode="fast")


def test_a_compiled_function_participates_in_autograd():
    calls = []

    @gj.compile
    def f(x, w):
        calls.append(1)
        return (gj.tanh(x @ w) ** 2).sum()

    @gj.compile(mode="reduce-overhead")
    def g(x):
        return x.exp().sum()

    x = gj.randn(4, 3)
    w = gj.randn(3, 2, requires_grad=True)
    for _ in range(2):
        w.grad = None
        f(x, w).backward()
    assert len(calls) == 1 and f.__name__ == "f"
    t = np.tanh(x.numpy() @ w.detach().numpy())
    np.testing.assert_allclose(w.grad.numpy(), x.numpy().T @ (2 * t * (1 - t * t)), rtol=1e-5)
    v = gj.tensor([0.0, 1.0], requires_grad=True)
    g(v).backward()
    np.testing.assert_allclose(v.grad.numpy(), np.exp([0.0, 1.0]), rtol=1e-6)


def test_compiled_module_kwargs_and_tuple_outputs():
    class Two(gj.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = gj.nn.Linear(2, 2)

        def forward(self, x, scale=1.0):
            h = self.lin(x)
            return h * scale, h.sum()

    model = Two()
    compiled = gj.compile(model)
    x = gj.randn(3, 2)
    a, s = compiled(x, scale=2.0)
    ea, es = model(x, scale=2.0)
    np.testing.assert_allclose(a.detach().numpy(), ea.detach().numpy(), rtol=1e-6)
    s.backward()
    assert model.lin.weight.grad is not None


def test_a_training_step_runs_the_forward_once_inside_the_backward(monkeypatch):
    """Under grad the compiled forward's results are pending: no separate forward program
    runs (the backward program computes forward and gradients together)."""
    from tracer import staging
    runs = []
    original = staging.Entry.run
    monkeypatch.setattr(staging.Entry, "run", lambda self, arrays: runs.append(1) or
                        original(self, arrays))
    model = mlp()
    compiled = gj.compile(model)
    x, y = gj.randn(16, 3), gj.randn(16, 1)
    for _ in range(3):
        model.zero_grad()
        ((compiled(x) - y) ** 2).mean().backward()
    assert runs == []
    with gj.no_grad():
        compiled(x)
    assert runs == [1]                      # inference still runs the compiled program


def test_batchnorm_model_trains_like_eager_in_float64():
    x = gj.randn(12, 4, dtype=gj.float64)
    y = gj.randn(12, 2, dtype=gj.float64)
    results = {}
    for kind in ("eager", "compiled"):
        gj.manual_seed(3)
        model = gj.nn.Sequential(gj.nn.Linear(4, 6), gj.nn.BatchNorm1d(6), gj.nn.ReLU(),
                                 gj.nn.Linear(6, 2)).double()
        run = gj.compile(model) if kind == "compiled" else model
        opt = gj.optim.Adam(model.parameters(), lr=0.01)
        losses = []
        for _ in range(4):
            opt.zero_grad()
            loss = ((run(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        results[kind] = (losses, run(x).detach().numpy(),
                         model[1].running_mean.numpy().copy(),
                         [p.detach().numpy().copy() for p in model.parameters()])
    (la, oa, ma, pa), (lb, ob, mb, pb) = results["eager"], results["compiled"]
    np.testing.assert_allclose(lb, la, rtol=1e-9)      # (summation order may differ)
    np.testing.assert_allclose(ob, oa, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(mb, ma, rtol=1e-9, atol=1e-12)
    for a, b in zip(pa, pb):
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-10)


def test_compiled_gradient_matches_finite_differences_float64():
    gj.manual_seed(4)
    model = gj.nn.Sequential(gj.nn.Linear(3, 5), gj.nn.Tanh(), gj.nn.Linear(5, 1)).double()
    compiled = gj.compile(model)
    x = gj.randn(7, 3, dtype=gj.float64)
    compiled(x).pow(2).sum().backward()
    w = model[0].weight
    analytic = w.grad.numpy().copy()
    base = w.detach().numpy().copy()
    eps, numeric = 1e-6, np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        vals = []
        for sign in (1, -1):
            with gj.no_grad():
                shifted = base.copy()
                shifted[idx] += sign * eps
                w.copy_(gj.tensor(shifted))
                vals.append(model(x).pow(2).sum().item())
        numeric[idx] = (vals[0] - vals[1]) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_compiled_backward_replays_and_two_models_keep_their_own_programs():
    """The backward of a compiled step is replayed from its second step (the jitted
    Function is part of the replay key, by identity): two compiled models of one
    architecture, trained interleaved, each match their eager twins."""
    from tracer.autograd import replay
    x, y = gj.randn(16, 3), gj.randn(16, 1)

    def two(kind):
        models = [mlp(), gj.nn.Sequential(gj.nn.Linear(3, 8), gj.nn.Tanh(),
                                          gj.nn.Linear(8, 1))]
        runs = [gj.compile(m) if kind == "compiled" else m for m in models]
        opts = [gj.optim.SGD(m.parameters(), lr=0.1) for m in models]
        losses = []
        for _ in range(4):
            for run, opt, scale in zip(runs, opts, (1.0, -2.0)):
                opt.zero_grad()
                loss = ((run(x) * scale - y) ** 2).mean()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        return losses
    gj.manual_seed(5)
    eager = two("eager")
    gj.manual_seed(5)
    hits = replay.STATS["hits"]
    compiled = two("compiled")
    assert replay.STATS["hits"] - hits >= 4
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)


class Masked(gj.nn.Module):
    """A constant buffer (a mask, never written), with or without BatchNorm's statistics."""

    def __init__(self, bn: bool):
        super().__init__()
        self.lin = gj.nn.Linear(4, 4)
        self.bn = gj.nn.BatchNorm1d(4) if bn else gj.nn.Identity()
        self.register_buffer("mask", gj.tensor(np.tril(np.ones((4, 4), np.float32))))

    def forward(self, x):
        return self.bn(self.lin(x) @ self.mask)


@pytest.mark.parametrize("bn", [False, True], ids=["mask", "mask+batchnorm"])
def test_unchanged_buffers_are_not_written_back_so_the_backward_replays(bn):
    """Only buffers the forward changed are results written back: copying an unchanged one
    back was a pending in-place update each step, which kept the backward from replaying
    (the transformer block's causal mask: compile(model) was slower than eager)."""
    from tracer.autograd import replay
    x = gj.randn(8, 4)
    results = {}
    for kind in ("eager", "compiled"):
        gj.manual_seed(7)
        model = Masked(bn)
        run = gj.compile(model) if kind == "compiled" else model
        mask = model.mask
        opt = gj.optim.SGD(model.parameters(), lr=0.1)
        hits = replay.STATS["hits"]
        for _ in range(4):
            opt.zero_grad()
            run(x).pow(2).mean().backward()
            opt.step()
        stats = model.bn.running_mean.numpy().copy() if bn else np.ones(1)
        results[kind] = (replay.STATS["hits"] - hits, stats,
                         model.lin.weight.detach().numpy().copy())
        assert model.mask is mask and mask._expr.op is None
        np.testing.assert_array_equal(mask.numpy(), np.tril(np.ones((4, 4))))
    if not bn:      # (a pending BatchNorm update still keeps every backward from replaying)
        assert results["compiled"][0] >= 3           # steps 2-4 replay the backward
    np.testing.assert_allclose(results["compiled"][1], results["eager"][1], rtol=1e-5)
    np.testing.assert_allclose(results["compiled"][2], results["eager"][2], rtol=1e-5)
    assert not np.allclose(results["compiled"][1], 0)     # the statistics did update
