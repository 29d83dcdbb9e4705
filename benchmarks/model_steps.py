"""Training steps of small models as users write them (issue 13, section 2): a transformer
block and a CNN, each run eagerly and through `compile(model)`, gradjit against PyTorch
eager and `torch.compile` when PyTorch is importable.

  - step transformer: token embedding (vocab 96, d_model 64) + TransformerEncoderLayer
    (4 heads, feed-forward 128, dropout 0, causal mask) + linear head, batch 16 x 32 tokens,
    cross_entropy on int targets, AdamW;
  - step cnn: Conv2d 3->16 3x3 (padding 1) on 32x32 images, batch 32, relu, 2x2 max pool,
    Linear to 10 classes, cross_entropy, SGD momentum.

Every system starts from the same parameters (copied from one NumPy draw), so the agreement
check compares the first step's loss and parameters. `cold` is the time of the first step of
a fresh model: for the compile rows, trace + compile + run. Run with PyTorch from its venv:

    PYTHONPATH=. /tmp/refvenv/bin/python -m benchmarks.model_steps [ROUNDS]
"""
from __future__ import annotations

import os
import sys
import time

if __name__ == "__main__":
    # standalone: one thread everywhere, set before NumPy loads its BLAS (which reads it then)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "GRADJIT_NUM_THREADS"):
        os.environ[_var] = "1"

import numpy as np  # noqa: E402

from benchmarks.harness import System, Workload, check_agreement, optional_import  # noqa: E402
from benchmarks.imperative_steps import _medians, _to_numpy  # noqa: E402

torch = optional_import("torch")

VOCAB, D_MODEL, HEADS, FF, SEQ, BATCH = 96, 64, 4, 128, 32, 16


class _Transformer:
    """Builds the transformer-block model from either library (same modules, same names)."""

    @staticmethod
    def model(lib):
        nn = lib.nn

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(VOCAB, D_MODEL)
                self.layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=0.0,
                                                        batch_first=True)
                self.head = nn.Linear(D_MODEL, VOCAB)
                self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(SEQ))

            def forward(self, idx):
                return self.head(self.layer(self.embed(idx), src_mask=self.mask, is_causal=True))
        return Block()

    @staticmethod
    def data(rng):
        idx = rng.integers(0, VOCAB, (BATCH, SEQ + 1))
        return idx[:, :-1], idx[:, 1:]

    @staticmethod
    def loss(lib, out, target):
        return lib.nn.functional.cross_entropy(out.reshape(-1, VOCAB), target.reshape(-1))

    @staticmethod
    def optimizer(lib, params):
        return lib.optim.AdamW(params, lr=1e-3)


class _CNN:
    @staticmethod
    def model(lib):
        nn = lib.nn
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(16 * 16 * 16, 10))

    @staticmethod
    def data(rng):
        return rng.standard_normal((32, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 32)

    @staticmethod
    def loss(lib, out, target):
        return lib.nn.functional.cross_entropy(out, target)

    @staticmethod
    def optimizer(lib, params):
        return lib.optim.SGD(params, lr=0.01, momentum=0.9)


def _initial(spec, seed: int) -> list[np.ndarray]:
    """One NumPy draw per parameter, in the model's parameter order (same in both libraries)."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(p.shape) for p in spec.model(_reference_lib()).parameters()]
    return [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]


def _reference_lib():
    import gradjit
    return gradjit


def _make(spec, lib, compile_fn, init, data):
    model = spec.model(lib)
    with lib.no_grad():
        for p, v in zip(model.parameters(), init):
            p.copy_(lib.tensor(v))
    forward = compile_fn(model) if compile_fn else model
    opt = spec.optimizer(lib, model.parameters())
    x, y = lib.tensor(data[0]), lib.tensor(data[1])

    def step():
        opt.zero_grad()
        loss = spec.loss(lib, forward(x), y)
        loss.backward()
        opt.step()
        return [loss] + list(model.parameters())
    return step


def _system(name, spec, lib, compile_fn, init, data) -> System:
    def cold():
        fresh = _make(spec, lib, compile_fn, init, data)
        t0 = time.perf_counter()
        fresh()[0].item()
        return time.perf_counter() - t0
    return System(name, _make(spec, lib, compile_fn, init, data), _to_numpy, cold)


def workload(gj, spec, name: str, description: str, seed: int) -> Workload:
    init = _initial(spec, seed)
    data = spec.data(np.random.default_rng(seed + 1))
    systems = [_system("gradjit", spec, gj, None, init, data),
               _system("gradjit.compile", spec, gj, gj.compile, init, data)]
    if torch is not None:
        systems.append(_system("torch", spec, torch, None, init, data))
        # torch.compile last: its worker threads slow whatever runs after it on 2 cores
        if hasattr(torch, "compile"):
            systems.append(_system("torch.compile", spec, torch, torch.compile, init, data))
    return Workload(name, description, systems, rtol=2e-3)


def build(gj, quick: bool) -> list[Workload]:
    return [workload(gj, _Transformer, "step transformer",
                     f"embedding + TransformerEncoderLayer(d={D_MODEL}, {HEADS} heads, causal) "
                     f"+ head, batch {BATCH}x{SEQ}, AdamW", seed=21),
            workload(gj, _CNN, "step cnn", "conv 3->16 3x3, relu, maxpool, linear, batch 32, "
                     "SGD momentum", seed=31)]


def main():
    """python -m benchmarks.model_steps [ROUNDS]: wall and CPU medians per step (1 thread),
    ratios to gradjit, and each system's cold first step."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    import gradjit as gj
    if torch is not None:
        torch.set_num_threads(1)
    for w in build(gj, False):
        errors = check_agreement(w)
        colds = {s.name: s.cold() for s in w.systems}
        med = _medians(w, rounds)
        print(f"== {w.name}: {w.description}; max rel. difference {max(errors.values()):.1e}")
        base = med["gradjit"]
        for n, (wall, cpu) in med.items():
            ratio = f"  gradjit/{n} {base[0] / wall:5.2f}x (cpu {base[1] / cpu:5.2f}x)"
            print(f"  {n:16s} {wall:8.3f} ms (cpu {cpu:7.3f})  cold {colds[n] * 1e3:8.0f} ms"
                  + ("" if n == "gradjit" else ratio))


if __name__ == "__main__":
    main()
