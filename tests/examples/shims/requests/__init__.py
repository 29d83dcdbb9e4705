"""A stand-in for requests (the reference interpreter lacks it; CI has no network): `get` of
the Cora URL that pytorch/examples gcn and gat download answers with a synthetic Cora
tarball in Cora's file format (cora/cora.content: id, binary word features, class name;
cora/cora.cites: cited id, citing id), sizes from GRADJIT_FAKE_CORA="nodes,features,classes"
(default 1700,24,4: gat and gcn split off 1500-1600 nodes for testing and validation);
and `get` of mnist.pkl.gz (pytorch/tutorials nn_tutorial.py) with a synthetic MNIST pickle
in that file's format (train, valid, test: float32 rows of 784 in [0, 1], int64 labels), the
bar-per-class digits of the torchvision stand-in, sizes from GRADJIT_FAKE_MNIST="train,valid";
and `get` of tinyshakespeare's input.txt (nanoGPT's data/shakespeare_char/prepare.py) with a
synthetic play: speaker lines over a small vocabulary, GRADJIT_FAKE_TEXT characters (default
20000). Any other URL raises ConnectionError."""
import gzip
import io
import os
import pickle
import random
import tarfile

import numpy as np

CORA_URL = "https://linqs-data.soe.ucsc.edu/public/lbc/cora.tgz"
MNIST_FILE = "mnist.pkl.gz"
SHAKESPEARE_FILE = "tinyshakespeare/input.txt"


class ConnectionError(OSError):
    pass


def synthetic_cora(nodes: int, features: int, classes: int, seed: int = 0) -> dict:
    """Words of a node's class are likelier; each node cites one node of its class."""
    rng = random.Random(seed)
    labels = [rng.randrange(classes) for _ in range(nodes)]
    by_class = {c: [n for n in range(nodes) if labels[n] == c] for c in range(classes)}
    content, cites = [], []
    for node, label in enumerate(labels):
        words = [int(rng.random() < (0.4 if w % classes == label else 0.05))
                 for w in range(features)]
        words[label] = 1                      # no empty row (its scale would be 1/0)
        content.append(" ".join([str(1000 + node), *map(str, words), f"class{label}"]))
        cites.append(f"{1000 + rng.choice(by_class[label])} {1000 + node}")
    return {"cora/cora.content": "\n".join(content) + "\n",
            "cora/cora.cites": "\n".join(cites) + "\n"}


def synthetic_mnist_pickle(train: int, valid: int) -> bytes:
    """gzip of pickle ((x_train, y_train), (x_valid, y_valid), (x_test, y_test))."""
    parts = []
    for n, seed in ((train, 0), (valid, 1), (valid, 2)):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(labels):
            images[i, 2 * k + 4:2 * k + 6, 4:24] = 255
        parts.append(((images.reshape(n, 784) / 255.0).astype(np.float32),
                      labels.astype(np.int64)))
    return gzip.compress(pickle.dumps(tuple(parts), protocol=2))


def synthetic_play(chars: int, seed: int = 0) -> str:
    """'NAME:\nwords words.\n\n' blocks, cut at chars characters."""
    rng = random.Random(seed)
    speakers = ["FIRST CITIZEN", "MENENIUS", "CORIOLANUS", "VOLUMNIA"]
    words = ("the and to of my lord you that is not with your me be this good what "
             "love will we shall for thou speak hear rome").split()
    out, size = [], 0
    while size < chars:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 10)))
        block = f"{rng.choice(speakers)}:\n{line.capitalize()}{rng.choice('.,?!')}\n\n"
        out.append(block)
        size += len(block)
    return "".join(out)[:chars]


class _Response:
    def __init__(self, payload: bytes):
        self.raw = io.BytesIO(payload)
        self.content = payload
        self.text = payload.decode("utf-8", "replace")
        self.status_code = 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def get(url, stream=False, **kwargs):
    if url.endswith("/" + MNIST_FILE):
        sizes = [int(v) for v in os.environ.get("GRADJIT_FAKE_MNIST", "256,64").split(",")]
        return _Response(synthetic_mnist_pickle(*sizes))
    if url.endswith("/" + SHAKESPEARE_FILE):
        chars = int(os.environ.get("GRADJIT_FAKE_TEXT", "20000"))
        return _Response(synthetic_play(chars).encode())
    if url != CORA_URL:
        raise ConnectionError(f"no network here (the stand-in serves only {CORA_URL}, "
                              f"{MNIST_FILE} and {SHAKESPEARE_FILE})")
    sizes = [int(v) for v in os.environ.get("GRADJIT_FAKE_CORA", "1700,24,4").split(",")]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in synthetic_cora(*sizes).items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return _Response(buffer.getvalue())
