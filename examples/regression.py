"""Regression with a scheduler: an MLP fits y = sin(3x) + x^2/2 + noise, trained with Adam
under OneCycleLR, compiled with gradjit.compile, checkpointed with gradjit.save/load.

    python examples/regression.py [--steps N]     (default 300 steps)
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

import gradjit as torch                                          # noqa: E402
import gradjit.nn as nn                                          # noqa: E402
from gradjit.optim.lr_scheduler import OneCycleLR                # noqa: E402


def make_data(rng, n):
    x = rng.uniform(-2, 2, (n, 1)).astype(np.float32)
    y = np.sin(3 * x) + 0.5 * x ** 2 + rng.normal(0, 0.05, (n, 1)).astype(np.float32)
    return torch.tensor(x), torch.tensor(y.astype(np.float32))


def main(steps: int) -> float:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = make_data(rng, 256)
    x_test, y_test = make_data(rng, 128)
    model = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                          nn.Linear(64, 1))
    compiled = torch.compile(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = OneCycleLR(opt, max_lr=3e-2, total_steps=steps)
    loss_fn = nn.MSELoss()
    start = time.perf_counter()
    for step in range(steps):
        opt.zero_grad()
        loss = loss_fn(compiled(x), y)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  train mse {loss.item():.4f}  "
                  f"lr {sched.get_last_lr()[0]:.2e}")
    print(f"{steps} steps in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "regression.pt"
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict()}, path)
        restored = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                                 nn.Linear(64, 1))
        restored.load_state_dict(torch.load(path)["model"])
    restored.eval()
    with torch.no_grad():
        test = loss_fn(restored(x_test), y_test).item()
    print(f"test mse of the reloaded model {test:.4f}")
    return test


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
