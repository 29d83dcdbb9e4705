"""Our own small programs in the shape of the PyTorch programs that docs/compat.md lists
(written here, nothing copied), run through the `torch` names as a user script would: a
CNN trained with Adadelta and StepLR from a DataLoader with a sampler, an LSTM tagger over
packed variable-length sentences, a seq2seq nn.Transformer, and a scalar autograd check in
micrograd's style. Each trains a few steps and its loss must go down."""
import math

import numpy as np

import gradjit as torch
import gradjit.nn as nn
import gradjit.nn.functional as F
from gradjit.nn.utils.rnn import pack_sequence, pad_packed_sequence
from gradjit.optim.lr_scheduler import StepLR
from gradjit.utils.data import DataLoader, RandomSampler, TensorDataset


def _bars(n, seed):
    """Images with one bright row band per class (as the acceptance runner's MNIST)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.uniform(0, 0.2, (n, 1, 12, 12)).astype(np.float32)
    for i, k in enumerate(labels):
        images[i, 0, 2 * k + 2:2 * k + 4, 2:10] = 1.0
    return torch.from_numpy(images), torch.from_numpy(labels)


def test_cnn_with_adadelta_steplr_and_a_sampler():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.1),
                          nn.Flatten(), nn.Linear(4 * 5 * 5, 4), nn.LogSoftmax(dim=1))
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    data = TensorDataset(*_bars(64, 0))
    loader = DataLoader(data, batch_size=16,
                        sampler=RandomSampler(data, replacement=True, num_samples=10 ** 9))
    losses = []
    for step, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step == 11:
            break
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.7
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


class Tagger(nn.Module):
    def __init__(self, vocab, tags):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8, max_norm=2.0)
        self.lstm = nn.LSTM(8, 12, bidirectional=True, proj_size=4)
        self.out = nn.Linear(8, tags)

    def forward(self, sentences):
        packed = pack_sequence([self.embed(s) for s in sentences], enforce_sorted=False)
        hidden, _ = pad_packed_sequence(self.lstm(packed)[0])
        return F.log_softmax(self.out(hidden), dim=-1)            # (T, B, tags)


def test_lstm_tagger_over_packed_sentences():
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    sentences = [torch.tensor(rng.integers(0, 6, n)) for n in (5, 3, 4, 2)]
    tags = [s % 2 for s in sentences]                      # tag: the word's parity
    model = Tagger(6, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        scores = model(sentences)
        loss = sum(F.nll_loss(scores[:len(t), b], t) for b, t in enumerate(tags)) / len(tags)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8


def test_seq2seq_transformer_copies_a_sequence():
    torch.manual_seed(2)
    embed, model, head = nn.Embedding(5, 8), nn.Transformer(8, 2, 1, 1, 16, dropout=0.0), \
        nn.Linear(8, 5)
    params = list(embed.parameters()) + list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=0.02)
    src = torch.tensor([[1, 2], [3, 4], [2, 1], [4, 3]])       # (S, N)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        out = head(model(embed(src), embed(src), tgt_mask=mask))
        loss = F.cross_entropy(out.reshape(-1, 5), src.reshape(-1))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7


def test_scalar_autograd_as_micrograd_checks_it():
    x = torch.Tensor([-3.0]).double()
    x.requires_grad = True
    z = 3 * x + 1 + x
    h = (z * z).relu() + z.relu() * x
    y = h + h * x
    y.backward()
    zv = 4 * -3.0 + 1                                         # -11: relu(z) is 0
    want = zv * zv * (1 + -3.0)
    dy_dx = (2 * zv * 4) * (1 + -3.0) + zv * zv               # d/dx [z^2 (1 + x)]
    assert math.isclose(y.item(), want) and math.isclose(x.grad.item(), dy_dx)
