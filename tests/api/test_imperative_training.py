"""A PyTorch-style training loop compiles its step once and then only runs native code.

The assertions are on what the compile pipeline saw (distinct program structures, and the
runtime's compile counters on the native backend), never on time.
"""

import numpy as np
import pytest

import gradjit as gj
from runtime import config
from tracer import pipeline
import tracer.autograd.engine as engine
import tracer.optim as optim_module
import tracer.tensor as tensor_module


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


STEPS = 100


def blobs(n=64, d=8, k=3, seed=0):
    """k Gaussian blobs in d dimensions: an easy classification problem."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 3
    labels = rng.integers(0, k, n)
    x = centers[labels] + rng.standard_normal((n, d))
    return x.astype(np.float32), labels


@pytest.fixture
def program_log(monkeypatch):
    """Every Function the imperative front runs, as (step, structural key): backward and
    realisation programs, and the optimizers' update programs (built once, called often)."""
    log = {"step": 0, "seen": [], "built": []}

    def watch(original):
        def run(fn, arrays):
            log["seen"].append((log["step"], pipeline.structural_key(fn)))
            return original(fn, arrays)
        return run

    original_executable = optim_module.executable

    def watch_executable(fn):
        key = pipeline.structural_key(fn)
        log["built"].append((log["step"], key))
        compiled = original_executable(fn)

        def run(arrays):
            log["seen"].append((log["step"], key))
            return compiled(arrays)
        return run

    monkeypatch.setattr(engine, "run_function", watch(engine.run_function))
    monkeypatch.setattr(tensor_module, "run_function", watch(tensor_module.run_function))
    monkeypatch.setattr(optim_module, "executable", watch_executable)
    return log


def compiles() -> int | None:
    if config.backend() == "interpret":
        return None
    import runtime
    return runtime.cache_info()["compiles"]


@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_mlp_training_loss_falls_and_step_compiles_once(loss_name, program_log):
    x_np, labels = blobs()
    x = gj.tensor(x_np)
    if loss_name == "cross_entropy":
        target, criterion = gj.tensor(labels), gj.nn.CrossEntropyLoss()
    else:
        target, criterion = gj.tensor(np.eye(3, dtype=np.float32)[labels]), gj.nn.MSELoss()
    gj.manual_seed(0)
    model = gj.nn.Sequential(gj.nn.Linear(8, 16), gj.nn.ReLU(), gj.nn.Linear(16, 3))
    opt = gj.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses, compiled_after_warmup = [], None
    for step in range(STEPS):
        program_log["step"] = step
        if step == 3:
            compiled_after_warmup = compiles()
        opt.zero_grad()
        loss = criterion(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert all(b < a * 1.5 for a, b in zip(losses, losses[1:]))      # no blow-up on the way
    first_seen = {}
    for step, key in program_log["seen"]:
        first_seen.setdefault(key, step)
    # step 0: backward + SGD's first step (momentum buffer made); step 1: the later SGD step
    assert len(first_seen) <= 3 and max(first_seen.values()) <= 1
    assert len(program_log["seen"]) == 2 * STEPS         # one backward, one update per step
    assert [step for step, _ in program_log["built"]] == [0, 1]   # update programs traced
    if compiled_after_warmup is not None:
        assert compiles() == compiled_after_warmup


def test_reading_the_loss_each_step_adds_no_program(program_log):
    """backward() realises the root, so loss.item() afterwards runs nothing."""
    w = gj.tensor([1.0, -1.0], requires_grad=True)
    for step in range(5):
        program_log["step"] = step
        loss = ((w - gj.tensor([2.0, 3.0])) ** 2).sum()
        loss.backward()
        loss.item()
        with gj.no_grad():
            w -= 0.1 * w.grad
        w.grad = None
    assert len(program_log["seen"]) == 5
    assert len({key for _, key in program_log["seen"]}) <= 2


def test_manual_update_loop_does_not_grow_the_pending_graph():
    """The leaf's lazily updated value is realised by the next backward program."""
    w = gj.tensor([0.0], requires_grad=True)
    for _ in range(40):
        loss = ((w - 3.0) ** 2).sum()
        loss.backward()
        with gj.no_grad():
            w -= 0.1 * w.grad
        w.grad.zero_()
    depth, e = 0, w._expr
    while e.op is not None and e.data is None:
        depth += 1
        e = e.args[0]
    assert depth <= 3
    np.testing.assert_allclose(w.item(), 3.0, atol=1e-3)      # 3 * 0.8**40 off


def test_adam_training_of_a_regression():
    gj.manual_seed(1)
    x = gj.randn(32, 4)
    true_w = gj.tensor([[1.0], [-2.0], [0.5], [3.0]])
    y = x @ true_w
    model = gj.nn.Linear(4, 1)
    opt = gj.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        loss = gj.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
    np.testing.assert_allclose(np.array(model.weight.tolist()).ravel(), [1.0, -2.0, 0.5, 3.0],
                               atol=0.05)


@pytest.mark.parametrize("read_first", [False, True])
def test_values_realised_before_backward_are_not_recomputed(read_first, monkeypatch):
    """loss.item() before backward() computes the forward once: backward reuses it."""
    from ir.passes import optimize
    programs = []
    original = engine.run_function
    monkeypatch.setattr(engine, "run_function",
                        lambda fn, arrays: programs.append(optimize(fn)) or original(fn, arrays))
    gj.manual_seed(0)
    x = gj.randn(4, 3)
    w1, w2 = gj.randn(3, 5, requires_grad=True), gj.randn(5, 2, requires_grad=True)
    loss = ((x @ w1).tanh() @ w2).sum()
    if read_first:
        loss.item()
    loss.backward()
    (fn,) = programs
    matmuls = sum(op.prim.name == "dot_general" for op in fn.body)
    # the three of the reverse pass (dW2, dh, dW1), plus the two forward ones when the
    # forward was not computed yet
    assert matmuls == (3 if read_first else 5)


def test_no_grad_update_inside_a_training_loop_keeps_leaves():
    w = gj.tensor([1.0, 2.0], requires_grad=True)
    ref = np.array([1.0, 2.0])
    for _ in range(3):
        loss = (w * w).sum()
        loss.backward()
        with gj.no_grad():
            w -= 0.1 * w.grad
        w.grad.zero_()
        ref = ref - 0.1 * 2 * ref
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_allclose(values(w), ref, rtol=1e-6)
