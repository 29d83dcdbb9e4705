"""An LSTM sequence tagger on synthetic sentences: each token's tag depends on the token and
on its left neighbour (tag = (token + previous token) mod 3), so a tagger must carry context.
Embedding -> bidirectional LSTM -> Linear, cross_entropy over every position, Adam with
gradient clipping, sentences of varying length padded with pad_sequence and masked with
ignore_index.

    python examples/lstm_tagger.py [--steps N]     (default 300 steps)
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
from gradjit.nn.utils.rnn import pad_sequence                    # noqa: E402

VOCAB, TAGS, PAD_TAG = 12, 3, -100


def sentence(rng):
    tokens = rng.integers(0, VOCAB, rng.integers(5, 13))
    tags = (tokens + np.concatenate([[0], tokens[:-1]])) % TAGS
    return torch.tensor(tokens), torch.tensor(tags)


def batch(rng, size):
    pairs = [sentence(rng) for _ in range(size)]
    tokens = pad_sequence([t for t, _ in pairs], batch_first=True)
    tags = pad_sequence([g for _, g in pairs], batch_first=True, padding_value=PAD_TAG)
    return tokens, tags


class Tagger(nn.Module):
    def __init__(self, embed=16, hidden=32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, TAGS)

    def forward(self, tokens):
        h, _ = self.lstm(self.embed(tokens))
        return self.out(h)


def accuracy(model, tokens, tags):
    with torch.no_grad():
        pred = model(tokens).argmax(-1)
    mask = tags != PAD_TAG
    return ((pred == tags) & mask).sum().item() / mask.sum().item()


def main(steps: int) -> float:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # a few fixed batches (each its own padded length), cycled: one program per length
    batches = [batch(rng, 32) for _ in range(8)]
    test_tokens, test_tags = batch(rng, 256)
    model = Tagger()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = time.perf_counter()
    for step in range(steps):
        tokens, tags = batches[step % len(batches)]
        opt.zero_grad()
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, TAGS), tags.reshape(-1),
                               ignore_index=PAD_TAG)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    print(f"{steps} steps in {time.perf_counter() - start:.1f} s")
    model.eval()
    acc = accuracy(model, test_tokens, test_tags)
    print(f"test accuracy {acc:.3f}")
    return acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
