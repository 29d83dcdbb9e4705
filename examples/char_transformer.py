"""A character-level transformer language model (minGPT-style, tiny config) trained on the
paragraph in examples/data/tiny.txt, written as a PyTorch user would write it.

    python examples/char_transformer.py [--steps N]     (default 150 steps)

The model is compiled with gradjit.compile; the optimizer is AdamW under a cosine schedule
with linear warm-up; the script prints the loss and a sample at the end.
"""
import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

import gradjit as torch                                          # noqa: E402
import gradjit.nn as nn                                          # noqa: E402
import gradjit.nn.functional as F                                # noqa: E402

BLOCK, EMBED, HEADS, LAYERS, BATCH = 24, 32, 4, 2, 8


class LayerNorm(nn.Module):
    """LayerNorm over the last axis (written out: nn.LayerNorm may not exist yet)."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / (var + self.eps).sqrt() * self.weight + self.bias


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(EMBED, 3 * EMBED)
        self.proj = nn.Linear(EMBED, EMBED)
        future = np.triu(np.ones((BLOCK, BLOCK), np.float32), k=1) * -1e9
        self.register_buffer("mask", torch.tensor(future))

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.qkv(x)
        heads = [qkv[:, :, i * c:(i + 1) * c].reshape(b, t, HEADS, c // HEADS).transpose(1, 2)
                 for i in range(3)]
        q, k, v = heads
        att = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(c // HEADS))
        att = F.softmax(att + self.mask[:t, :t], dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = LayerNorm(EMBED), LayerNorm(EMBED)
        self.attn = CausalSelfAttention()
        self.mlp = nn.Sequential(nn.Linear(EMBED, 4 * EMBED), nn.SiLU(),
                                 nn.Linear(4 * EMBED, EMBED))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.tok = nn.Parameter(torch.randn(vocab, EMBED) * 0.02)    # token embedding
        self.pos = nn.Parameter(torch.randn(BLOCK, EMBED) * 0.02)    # position embedding
        self.blocks = nn.Sequential(*[Block() for _ in range(LAYERS)])
        self.ln_f = LayerNorm(EMBED)
        self.head = nn.Linear(EMBED, vocab)

    def forward(self, idx):
        x = self.tok[idx] + self.pos[:idx.shape[1]]
        return self.head(self.ln_f(self.blocks(x)))


def batches(data, rng):
    starts = rng.integers(0, len(data) - BLOCK - 1, BATCH)
    x = np.stack([data[s:s + BLOCK] for s in starts])
    y = np.stack([data[s + 1:s + BLOCK + 1] for s in starts])
    return torch.tensor(x), torch.tensor(y)


def sample(model, stoi, itos, prompt, length, rng):
    idx = [stoi[ch] for ch in prompt]
    model.eval()
    with torch.no_grad():
        for _ in range(length):
            context = idx[-BLOCK:]
            context = [0] * (BLOCK - len(context)) + context     # one shape: one program
            logits = model(torch.tensor([context]))[0, -1].numpy().astype(np.float64)
            p = np.exp(logits - logits.max())
            idx.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train()
    return "".join(itos[i] for i in idx)


def main(steps: int) -> float:
    text = (Path(__file__).parent / "data" / "tiny.txt").read_text()
    chars = sorted(set(text))
    stoi, itos = {c: i for i, c in enumerate(chars)}, dict(enumerate(chars))
    data = np.array([stoi[c] for c in text], np.int64)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = CharGPT(len(chars))
    compiled = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=warmup),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps - warmup))],
        milestones=[warmup])
    start, loss = time.perf_counter(), None
    for step in range(steps):
        x, y = batches(data, rng)
        logits = compiled(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3f}  lr {sched.get_last_lr()[0]:.2e}")
    print(f"{steps} steps in {time.perf_counter() - start:.1f} s")
    print(repr(sample(compiled, stoi, itos, "The ", 60, rng)))
    return loss.item()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    main(parser.parse_args().steps)
