"""A small CNN training step, gradjit against PyTorch eager, one thread each:
conv 3->16 3x3 (padding 1) on 32x32 images, batch 32, relu, 2x2 max pool, linear to 10
classes, cross entropy, SGD step. Run both sides (PyTorch from its own venv):

    GRADJIT_NUM_THREADS=1 python -m benchmarks.nn_conv_step
    /tmp/torchvenv/bin/python benchmarks/nn_conv_step.py --torch

Prints the median step time over `--steps` steps after warm-up (each step reads the loss,
so gradjit's lazy work is done inside the timed region).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time


def step_fn(torch, only_conv: bool = False):
    nn = torch.nn
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 16, 3, padding=1)
    head = nn.Linear(16 * 16 * 16, 10)
    params = list(conv.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    x = torch.randn(32, 3, 32, 32)
    y = torch.randint(0, 10, (32,))

    def step():
        opt.zero_grad()
        h = conv(x)
        if only_conv:
            loss = (h * h).mean()
        else:
            h = torch.nn.functional.max_pool2d(torch.relu(h), 2)
            loss = torch.nn.functional.cross_entropy(head(h.flatten(1)), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def measure(torch, steps: int, only_conv: bool) -> float:
    step = step_fn(torch, only_conv)
    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch", action="store_true", help="run PyTorch eager instead")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--only-conv", action="store_true", help="conv forward/backward only")
    args = ap.parse_args(argv)
    if args.torch:
        import torch
        torch.set_num_threads(1)
        name = f"torch {torch.__version__}"
    else:
        import gradjit as torch
        from runtime.threads import set_num_threads
        set_num_threads(1)
        name = "gradjit"
    median = measure(torch, args.steps, args.only_conv)
    print(f"{name}: median step {median * 1e3:.2f} ms over {args.steps} steps")


if __name__ == "__main__":
    sys.exit(main())
