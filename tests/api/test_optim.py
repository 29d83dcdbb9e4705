"""optim.SGD and optim.Adam against NumPy transcriptions of PyTorch's update rules."""

import math

import numpy as np
import pytest

import gradjit as gj


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


def leaf(data, dtype=None):
    return gj.tensor(data, dtype=dtype, requires_grad=True)


TARGET = np.array([0.5, 1.0, -1.0])
START = np.array([1.0, -2.0, 0.5])


def loss_grad(w: np.ndarray) -> np.ndarray:
    """Gradient of sum((w - TARGET)^4) / 4 (not quadratic, so momentum terms matter)."""
    return (w - TARGET) ** 3


def sgd_reference(steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                  maximize=False):
    """torch/optim/sgd.py, _single_tensor_sgd, in float64."""
    w, buf, out = START.copy(), None, []
    for _ in range(steps):
        g = loss_grad(w)
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
        out.append(w.copy())
    return out


def adam_reference(steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
    """torch/optim/adam.py, _single_tensor_adam, in float64."""
    b1, b2 = betas
    w = START.copy()
    m, v, vmax, out = np.zeros(3), np.zeros(3), np.zeros(3), []
    for t in range(1, steps + 1):
        g = loss_grad(w) + weight_decay * w
        m = m + (1 - b1) * (g - m)
        v = b2 * v + (1 - b2) * g * g
        second = v
        if amsgrad:
            vmax = np.maximum(vmax, v)
            second = vmax
        denom = np.sqrt(second) / math.sqrt(1 - b2 ** t) + eps
        w = w - lr / (1 - b1 ** t) * m / denom
        out.append(w.copy())
    return out


def run(make_opt, steps):
    w = gj.tensor(START, dtype=gj.float32, requires_grad=True)
    opt = make_opt([w])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (((w - gj.tensor(TARGET, dtype=gj.float32)) ** 4).sum() / 4).backward()
        opt.step()
        out.append(np.array(w.tolist()))
    return out, w


SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.8, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight decay": dict(lr=0.05, momentum=0.5, weight_decay=0.1),
    "maximize": dict(lr=0.01, maximize=True),
}


@pytest.mark.parametrize("kwargs", SGD_CASES.values(), ids=SGD_CASES.keys())
def test_sgd_matches_reference(kwargs):
    got, w = run(lambda p: gj.optim.SGD(p, **kwargs), 6)
    want = sgd_reference(6, **kwargs)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert w.is_leaf and w.requires_grad and w.grad_fn is None


ADAM_CASES = {
    "default": dict(lr=0.1),
    "betas eps": dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6),
    "weight decay": dict(lr=0.05, weight_decay=0.2),
    "amsgrad": dict(lr=0.1, amsgrad=True),
}


@pytest.mark.parametrize("kwargs", ADAM_CASES.values(), ids=ADAM_CASES.keys())
def test_adam_matches_reference(kwargs):
    got, _ = run(lambda p: gj.optim.Adam(p, **kwargs), 6)
    np.testing.assert_allclose(got, adam_reference(6, **kwargs), rtol=2e-5, atol=2e-6)


def test_adam_keeps_its_state_per_parameter():
    a = gj.tensor([1.0], requires_grad=True)
    b = gj.tensor([2.0, 3.0], requires_grad=True)
    opt = gj.optim.Adam([a, b], lr=0.1)
    (a.sum() + (b * b).sum()).backward()
    opt.step()
    assert opt.state[a]["step"] == 1 and opt.state[b]["exp_avg"].shape == (2,)


def test_parameters_without_grad_are_skipped():
    a, b = gj.tensor([1.0], requires_grad=True), gj.tensor([2.0], requires_grad=True)
    opt = gj.optim.SGD([a, b], lr=1.0)
    (a * 3).sum().backward()
    opt.step()
    assert a.tolist() == [-2.0] and b.tolist() == [2.0]


def test_param_groups_have_their_own_hyperparameters():
    a, b = gj.tensor([1.0], requires_grad=True), gj.tensor([1.0], requires_grad=True)
    opt = gj.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    (a + b).sum().backward()
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.9, 0.5], rtol=1e-6)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]


def test_changing_lr_between_steps_is_honoured():
    w = gj.tensor([0.0], requires_grad=True)
    opt = gj.optim.SGD([w], lr=1.0)
    for lr in (1.0, 0.5, 0.25):
        opt.param_groups[0]["lr"] = lr
        opt.zero_grad()
        w.sum().backward()           # gradient 1
        opt.step()
    assert w.item() == -1.75


def test_step_with_closure_returns_the_loss():
    w = gj.tensor([2.0], requires_grad=True)
    opt = gj.optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0 and w.item() == 1.0


def test_zero_grad_without_set_to_none_keeps_the_tensor():
    w = gj.tensor([1.0], requires_grad=True)
    opt = gj.optim.SGD([w], lr=0.1)
    (w * 5).sum().backward()
    g = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is g and g.tolist() == [0.0]


OPTIMIZER_ERRORS = [
    (lambda: gj.optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda: gj.optim.SGD([gj.tensor([1.0], requires_grad=True) * 2], lr=0.1), ValueError,
     "can't optimize a non-leaf Tensor"),
    (lambda: gj.optim.SGD([gj.zeros(1, requires_grad=True)], lr=-1.0), ValueError,
     "Invalid learning rate"),
    (lambda: gj.optim.SGD([gj.zeros(1, requires_grad=True)], lr=0.1, nesterov=True),
     ValueError, "Nesterov momentum requires a momentum and zero dampening"),
    (lambda: gj.optim.Adam([gj.zeros(1, requires_grad=True)], betas=(1.0, 0.9)), ValueError,
     "Invalid beta parameter at index 0"),
    (lambda: gj.optim.Adam([1.0]), TypeError, "optimizer can only optimize Tensors"),
]


@pytest.mark.parametrize("make, error, message", OPTIMIZER_ERRORS)
def test_optimizer_argument_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_state_dict_round_trip():
    w = gj.tensor([1.0, 2.0], requires_grad=True)
    opt = gj.optim.SGD([w], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    opt.step()
    saved = opt.state_dict()
    assert saved["param_groups"][0]["momentum"] == 0.9 and 0 in saved["state"]
    fresh = gj.optim.SGD([w], lr=0.5, momentum=0.0)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == 0.1 and "momentum_buffer" in fresh.state[w]


def test_one_step_is_one_program_traced_once(monkeypatch):
    """All parameter and state updates of a step run as one compiled call, traced on the
    first step of each kind and then reused: nothing is recorded op by op."""
    import tracer.optim.base as optim_module
    built, calls = [], []
    original = optim_module.executable

    def watch_executable(fn):
        built.append(fn)
        compiled = original(fn)
        return lambda arrays: calls.append(fn) or compiled(arrays)

    monkeypatch.setattr(optim_module, "executable", watch_executable)
    params = [gj.tensor([1.0, 2.0], requires_grad=True) for _ in range(3)]
    opt = gj.optim.Adam(params, lr=0.1)
    for step in range(4):
        opt.zero_grad()
        sum((p * p).sum() for p in params).backward()
        opt.param_groups[0]["lr"] = 0.1 / (step + 1)        # a schedule: no retrace
        opt.step()
    assert len(built) == 1 and len(calls) == 4
    # (p, grad, 2 states) each, and 8 scalars that the three parameters share (the same
    # values: each parameter's step count and so its bias corrections are the same)
    assert len(built[0].params) == 3 * 4 + 8



@pytest.mark.parametrize("make", [
    lambda ps: gj.optim.AdamW(ps, lr=0.05, weight_decay=0.1),
    lambda ps: gj.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
    lambda ps: gj.optim.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.2}], lr=0.05,
                            momentum=0.5),
])
def test_shared_hyperparameter_inputs_give_each_parameter_its_own_values(make):
    """Parameters whose hyperparameters differ (Adam's step counts after a parameter went
    without a gradient, a group's own lr, a dtype) read their own arrays: one optimizer over
    all of them is bitwise the same as one optimizer per parameter."""
    rng = np.random.default_rng(3)
    inits = [rng.standard_normal(s).astype(dt) for s, dt in
             (((3, 2), np.float32), ((2,), np.float32), ((4,), np.float64), ((2, 2), np.float32))]
    together = [gj.tensor(a, requires_grad=True) for a in inits]
    alone = [gj.tensor(a, requires_grad=True) for a in inits]
    opt = make(together)
    lr_of = {id(p): g.get("lr") for g in opt.param_groups for p in g["params"]}
    singles = []
    for p, q in zip(together, alone):
        kw = dict(opt.defaults)
        kw["lr"] = lr_of[id(p)]
        cls = type(opt)
        keep = {k: v for k, v in kw.items() if k in ("lr", "momentum", "weight_decay",
                                                     "betas", "eps", "dampening")}
        singles.append(cls([q], **keep))
    for step in range(5):
        for i, (p, q) in enumerate(zip(together, alone)):
            p.grad = q.grad = None
            if i == 1 and step % 2:                   # no gradient: its step count lags
                continue
            g = np.cos(np.arange(p.numel()) + step).reshape(p.shape).astype(inits[i].dtype)
            p.grad, q.grad = gj.tensor(g), gj.tensor(g.copy())
        opt.step()
        for single in singles:
            single.step()
        for p, q in zip(together, alone):
            np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


# ---- three steps of each optimizer (torch 2.13.0) --------------------------------------------

# w after each of 3 steps minimising sum((w - [0.5, 1, -1])**2) from w = [1, -2, 0.5] (torch 2.13.0)
OPTIMIZER_CASES = {
    "SGD": (lambda p: gj.optim.SGD(p, lr=0.1),
            [[0.9, -1.4, 0.2], [0.82, -0.92, -0.04], [0.756, -0.536, -0.232]]),
    "SGD momentum": (lambda p: gj.optim.SGD(p, lr=0.1, momentum=0.9),
                     [[0.9, -1.4, 0.2], [0.73, -0.38, -0.31], [0.531, 0.814, -0.907]]),
    "Adam": (lambda p: gj.optim.Adam(p, lr=0.1),
             [[0.9000000357627869, -1.899999976158142, 0.4000000059604645],
              [0.8011874556541443, -1.800102710723877, 0.30023905634880066],
              [0.7048712968826294, -1.7003815174102783, 0.20090284943580627]]),
}


@pytest.mark.parametrize("case", OPTIMIZER_CASES.values(), ids=OPTIMIZER_CASES.keys())
def test_optimizer_three_steps(case):
    make, trajectory = case
    w = leaf([1.0, -2.0, 0.5])
    target = gj.tensor([0.5, 1.0, -1.0])
    opt = make([w])
    for expected in trajectory:
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
        np.testing.assert_allclose(values(w), expected, rtol=1e-5, atol=1e-6)
    assert w.is_leaf and w.requires_grad


@pytest.mark.parametrize("kwargs, grad", [({}, None), ({"set_to_none": True}, None),
                                          ({"set_to_none": False}, [0.0])])
def test_zero_grad(kwargs, grad):
    w = leaf([1.0])
    opt = gj.optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    opt.zero_grad(**kwargs)
    assert (w.grad.tolist() if w.grad is not None else None) == grad


# ---- momentum, Nesterov, AdamW and zero_grad against NumPy -----------------------------------

def np_sgd(p, g, buf, lr, momentum, wd, nesterov):
    g = g + wd * p
    buf = g if buf is None else momentum * buf + g
    g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


def np_adamw(p, g, m, v, t, lr, wd, b1=0.9, b2=0.999, eps=1e-8):
    p = p * (1 - lr * wd)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return p - lr / (1 - b1 ** t) * m / (np.sqrt(v / (1 - b2 ** t)) + eps), m, v


X = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]])


def quad_loss_and_grad(w):
    r = X @ w
    return (r ** 2).mean(), 2 * X.T @ r / r.size


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_weight_decay_nesterov(nesterov):
    w0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    w = gj.tensor(w0, requires_grad=True)
    opt = gj.optim.SGD([w], lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=nesterov)
    ref, buf = w0.copy(), None
    for _ in range(5):
        opt.zero_grad()
        ((gj.tensor(X) @ w) ** 2).mean().backward()
        opt.step()
        _, g = quad_loss_and_grad(ref)
        ref, buf = np_sgd(ref, g, buf, 0.05, 0.9, 0.01, nesterov)
        np.testing.assert_allclose(values(w), ref, rtol=1e-12)


@pytest.mark.parametrize("wd", [0.01, 0.0])
def test_adamw_decouples_weight_decay(wd):
    w0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    w = gj.tensor(w0, requires_grad=True)
    opt = gj.optim.AdamW([w], lr=0.1, weight_decay=wd)
    ref, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t in range(1, 6):
        opt.zero_grad()
        ((gj.tensor(X) @ w) ** 2).mean().backward()
        opt.step()
        _, g = quad_loss_and_grad(ref)
        ref, m, v = np_adamw(ref, g, m, v, t, 0.1, wd)
        np.testing.assert_allclose(values(w), ref, rtol=1e-12)
    assert gj.optim.AdamW([gj.ones(1, requires_grad=True)]).defaults["weight_decay"] == 0.01


def test_grad_accumulates_and_the_zero_grad_variants():
    lin = gj.nn.Linear(2, 1)
    opt = gj.optim.SGD(lin.parameters(), lr=0.1)
    x = gj.tensor([[1.0, 2.0]])
    for _ in range(3):
        lin(x).sum().backward()
    np.testing.assert_allclose(values(lin.weight.grad), [[3.0, 6.0]])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_allclose(values(lin.weight.grad), [[0.0, 0.0]])
    lin(x).sum().backward()
    np.testing.assert_allclose(values(lin.weight.grad), [[1.0, 2.0]])
    opt.zero_grad()
    assert lin.weight.grad is None
    lin(x).sum().backward()
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None
