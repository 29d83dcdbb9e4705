"""A small CNN on synthetic image-shaped data: 3x16x16 images of four classes (a bright
horizontal bar, vertical bar, diagonal, or blob at a random place, in noise), two conv
blocks with BatchNorm and max pooling, trained with SGD momentum under StepLR, evaluated in
eval mode (running statistics) on held-out images.

    python examples/cnn.py [--steps N]     (default 200 steps)
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

import gradjit as torch                                          # noqa: E402
import gradjit.nn as nn                                          # noqa: E402
import gradjit.nn.functional as F                                # noqa: E402
from gradjit.optim.lr_scheduler import StepLR                    # noqa: E402
from gradjit.utils.data import DataLoader, TensorDataset         # noqa: E402

SIZE, CLASSES = 16, 4


def make_images(rng, n):
    """Images with one of four shapes drawn at a random offset, plus noise."""
    x = rng.normal(0, 0.3, (n, 3, SIZE, SIZE)).astype(np.float32)
    y = rng.integers(0, CLASSES, n)
    for img, label in zip(x, y):
        r, c = rng.integers(2, SIZE - 6, 2)
        if label == 0:
            img[:, r, c:c + 6] += 1.5
        elif label == 1:
            img[:, r:r + 6, c] += 1.5
        elif label == 2:
            for k in range(6):
                img[:, r + k, c + k] += 1.5
        else:
            img[:, r:r + 3, c:c + 3] += 1.5
    return torch.tensor(x), torch.tensor(y)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * (SIZE // 4) ** 2, CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.flatten(x, 1))


def main(steps: int) -> float:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train = TensorDataset(*make_images(rng, 512))
    x_test, y_test = make_images(rng, 256)
    loader = DataLoader(train, batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(0), drop_last=True)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = StepLR(opt, step_size=max(steps // 2, 1), gamma=0.3)
    start, step = time.perf_counter(), 0
    while step < steps:
        for images, labels in loader:
            model.train()
            opt.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            opt.step()
            sched.step()
            if step % 50 == 0 or step == steps - 1:
                print(f"step {step:4d}  loss {loss.item():.4f}")
            step += 1
            if step == steps:
                break
    print(f"{steps} steps in {time.perf_counter() - start:.1f} s")
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"test accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    main(parser.parse_args().steps)
