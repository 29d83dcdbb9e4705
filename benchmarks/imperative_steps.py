"""PyTorch-style training steps as users write them (issue 13, section 2), one step per call.

Workloads (each gradjit against PyTorch eager, and `torch.compile` of the model where it
applies, when PyTorch is importable):
  - step mlp784 (and "step mlp784 vs torch.compile"): MLP 784-256-10, batch 256,
    F.cross_entropy on int labels, SGD momentum;
  - step mlp32: the same with an MLP 32-64-10, batch 64;
  - step dynamic: pytorch/tutorials' dynamic_net.py shape: a middle layer reused a random
    0-3 times per step (each system draws the same depths);
  - step poly_tensor: polynomial_tensor.py's step (hand-written gradients, `a -= lr * g`
    on plain tensors, `loss.item()` every step);
  - step two_layer: two_layer_net_autograd.py's step (`loss.backward()`, then
    `w -= lr * w.grad; w.grad.zero_()` under no_grad, the loss read every 10th step);
  - step two_layer_tensor: two_layer_net_tensor.py's step (the backward by hand, with
    `grad_h[h < 0] = 0`, `w -= lr * grad_w` on plain tensors, the loss read every step).
Every system starts from the same arrays, so the first call of each (the agreement check)
computes the same loss and parameters. Run with PyTorch from its venv:

    PYTHONPATH=. /tmp/torchvenv/bin/python -m benchmarks --only step
    PYTHONPATH=. /tmp/torchvenv/bin/python -m benchmarks.imperative_steps   # + CPU times
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time

if __name__ == "__main__":
    # standalone: one thread everywhere, set before NumPy loads its BLAS (which reads it then)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "GRADJIT_NUM_THREADS"):
        os.environ[_var] = "1"

import numpy as np  # noqa: E402

from benchmarks.harness import (System, Workload, check_agreement,  # noqa: E402
                                optional_import)

torch = optional_import("torch")


def _to_numpy(result: list) -> list:
    """A step's loss and parameters (Tensors of either library, or floats) as arrays: done
    only for the agreement check, outside the timed calls."""
    return [np.asarray(t.detach().numpy() if hasattr(t, "detach") else t, np.float64)
            for t in result]


def _systems(gj, make_step, compiled: bool) -> list[System]:
    """gradjit and torch eager, or gradjit and torch.compile of the model (compiled):
    make_step(lib, wrap) returns a callable doing one step and returning the loss and
    parameters.

    NOTE: the torch.compile rows run last: after torch.compile has run in the process,
    gradjit's later steps measured 2-30x slower on this 2-core machine (its worker processes
    and threads stay), which would spoil every row after it."""
    out = [System("gradjit", make_step(gj, None), _to_numpy)]
    if compiled and torch is not None and hasattr(torch, "compile"):
        out.append(System("torch.compile", make_step(torch, torch.compile), _to_numpy))
    elif torch is not None and not compiled:
        out.append(System("torch", make_step(torch, None), _to_numpy))
    return out


def _mlp_inputs(d: int, h: int, o: int, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, d)).astype(np.float32)
    y = rng.integers(0, o, batch)
    init = [(rng.standard_normal((h, d)) * 0.05).astype(np.float32), np.zeros(h, np.float32),
            (rng.standard_normal((o, h)) * 0.05).astype(np.float32), np.zeros(o, np.float32)]
    return x, y, init


def _load(lib, params, arrays):
    with lib.no_grad():
        for p, v in zip(params, arrays):
            p.copy_(lib.tensor(v))


def mlp_step(gj, d: int, h: int, o: int, batch: int, compiled: bool = False) -> Workload:
    x, y, init = _mlp_inputs(d, h, o, batch, seed=d)

    def make(lib, wrap):
        model = lib.nn.Sequential(lib.nn.Linear(d, h), lib.nn.ReLU(), lib.nn.Linear(h, o))
        _load(lib, model.parameters(), init)
        forward = wrap(model) if wrap else model
        opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        xt, yt = lib.tensor(x), lib.tensor(y)

        def step():
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(forward(xt), yt)
            loss.backward()
            opt.step()
            return [loss] + list(model.parameters())
        return step
    return Workload(f"step mlp{d}" + (" vs torch.compile" if compiled else ""),
                    f"imperative step, MLP {d}-{h}-{o}, batch {batch}, int-label "
                    "cross_entropy, SGD momentum", _systems(gj, make, compiled), rtol=1e-3)


WARM_DEPTHS = (0, 1, 2, 3) * 2


def dynamic_step(gj) -> Workload:
    """dynamic_net.py: input layer, the middle layer 0-3 times (drawn per step), output."""
    d_in, h, d_out, n = 100, 100, 10, 64
    rng = np.random.default_rng(7)
    x, y = (rng.standard_normal((n, d_in)).astype(np.float32),
            rng.standard_normal((n, d_out)).astype(np.float32))
    init = [(rng.standard_normal(s) * 0.05).astype(np.float32)
            for s in ((h, d_in), (h,), (h, h), (h,), (d_out, h), (d_out,))]

    def make(lib, wrap):
        layers = [lib.nn.Linear(d_in, h), lib.nn.Linear(h, h), lib.nn.Linear(h, d_out)]
        params = [p for layer in layers for p in layer.parameters()]
        _load(lib, params, init)
        opt = lib.optim.SGD(params, lr=1e-4, momentum=0.9)
        xt, yt = lib.tensor(x), lib.tensor(y)
        depths = np.random.default_rng(11)

        def step(depth=None):
            hidden = layers[0](xt).clamp(min=0)
            depth = int(depths.integers(0, 4)) if depth is None else depth
            for _ in range(depth):
                hidden = layers[1](hidden).clamp(min=0)
            loss = (layers[2](hidden) - yt).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return [loss] + params
        # every depth seen twice before timing (first with empty momentum buffers, then in
        # the steady state), as "after each shape is seen once" asks, also with --quick's
        # few rounds: the timed steps measure steps, not first compiles
        for depth in WARM_DEPTHS:
            step(depth)
        return step
    return Workload("step dynamic", "dynamic_net.py-style: a layer reused 0-3 times per step",
                    _systems(gj, make, False), rtol=1e-3)


def poly_tensor_step(gj) -> Workload:
    """polynomial_tensor.py: forward, hand-written gradients, updates, loss read each step."""
    coefs = np.random.default_rng(3).standard_normal(4).astype(np.float32)

    def make(lib, wrap):
        x = lib.linspace(-math.pi, math.pi, 2000)
        y = lib.sin(x)
        state = [lib.tensor(c) for c in coefs]
        lr = 1e-6

        def step():
            a, b, c, d = state
            y_pred = a + (b * x) + (c * x.pow(2)) + (d * x.pow(3))
            loss = (y_pred - y).pow(2).sum().item()
            grad_y_pred = -2.0 * (y - y_pred)
            grads = [grad_y_pred.sum(), lib.matmul(grad_y_pred, x).sum(),
                     lib.matmul(grad_y_pred, x.pow(2)).sum(),
                     lib.matmul(grad_y_pred, x.pow(3)).sum()]
            for t, g in zip(state, grads):
                t -= lr * g
            return [loss]
        return step
    return Workload("step poly_tensor", "polynomial_tensor.py step (item() every step)",
                    _systems(gj, make, False), rtol=1e-4)


def _two_layer_arrays(seed: int) -> list:
    """x, y, w1, w2 of the two_layer tutorials: batch 64, 1000 -> 100 -> 10."""
    n, d_in, h, d_out = 64, 1000, 100, 10
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32)
            for s in ((n, d_in), (n, d_out), (d_in, h), (h, d_out))]


def two_layer_step(gj) -> Workload:
    """two_layer_net_autograd.py: backward, then no_grad updates and grad.zero_()."""
    arrays = _two_layer_arrays(5)

    def make(lib, wrap):
        x, y = lib.tensor(arrays[0]), lib.tensor(arrays[1])
        weights = [lib.tensor(a, requires_grad=True) for a in arrays[2:]]
        count = [0]

        def step():
            w1, w2 = weights
            loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
            count[0] += 1
            value = loss.item() if count[0] % 10 == 1 else None
            loss.backward()
            with lib.no_grad():
                for w in weights:
                    w -= 1e-6 * w.grad
                    w.grad.zero_()
            return [] if value is None else [value] + weights
        return step
    return Workload("step two_layer", "two_layer_net_autograd.py step (item() every 10th)",
                    _systems(gj, make, False), rtol=1e-4)


def two_layer_tensor_step(gj) -> Workload:
    """two_layer_net_tensor.py: forward, the backward written by hand, plain updates."""
    arrays = _two_layer_arrays(6)

    def make(lib, wrap):
        x, y = lib.tensor(arrays[0]), lib.tensor(arrays[1])
        weights = [lib.tensor(a) for a in arrays[2:]]

        def step():
            w1, w2 = weights
            hidden = x.mm(w1)
            h_relu = hidden.clamp(min=0)
            y_pred = h_relu.mm(w2)
            loss = (y_pred - y).pow(2).sum().item()
            grad_y_pred = 2.0 * (y_pred - y)
            grad_w2 = h_relu.t().mm(grad_y_pred)
            grad_h = grad_y_pred.mm(w2.t()).clone()
            grad_h[hidden < 0] = 0
            grad_w1 = x.t().mm(grad_h)
            w1 -= 1e-6 * grad_w1
            w2 -= 1e-6 * grad_w2
            return [loss]
        return step
    return Workload("step two_layer_tensor", "two_layer_net_tensor.py step (item() every step)",
                    _systems(gj, make, False), rtol=1e-4)


def build(gj, quick: bool) -> list[Workload]:
    """The workloads, for benchmarks/__main__.py's build()."""
    made = [mlp_step(gj, 784, 256, 10, 256), mlp_step(gj, 32, 64, 10, 64), dynamic_step(gj),
            poly_tensor_step(gj), two_layer_step(gj), two_layer_tensor_step(gj)]
    if torch is not None and hasattr(torch, "compile"):
        made += [mlp_step(gj, 784, 256, 10, 256, True), mlp_step(gj, 32, 64, 10, 64, True)]
    return made


def _medians(workload: Workload, rounds: int) -> dict:
    """Per system: median wall and thread-CPU milliseconds per step, systems interleaved.
    CPU time tells apart the work of a step from waiting for a core on a loaded machine."""
    for s in workload.systems:
        for _ in range(10):
            s.run()
    wall = {s.name: [] for s in workload.systems}
    cpu = {s.name: [] for s in workload.systems}
    for _ in range(rounds):
        for s in workload.systems:
            t0, c0 = time.perf_counter(), time.thread_time()
            s.run()
            wall[s.name].append(time.perf_counter() - t0)
            cpu[s.name].append(time.thread_time() - c0)
    return {n: (statistics.median(wall[n]) * 1e3, statistics.median(cpu[n]) * 1e3)
            for n in wall}


def main():
    """python -m benchmarks.imperative_steps [ROUNDS]: wall and CPU medians, 1 thread."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    import gradjit as gj       # after the thread settings, which libraries read on import
    if torch is not None:
        torch.set_num_threads(1)
    for w in build(gj, False):
        check_agreement(w)
        med = _medians(w, rounds)
        base = med.get("gradjit")
        print(f"{w.name:32s}" + "  ".join(
            f"{n} {wall:8.3f} ms (cpu {c:7.3f})" + (
                f" ratio {base[0] / wall:5.2f}x (cpu {base[1] / c:5.2f}x)"
                if n != "gradjit" else "") for n, (wall, c) in med.items()))


if __name__ == "__main__":
    main()
