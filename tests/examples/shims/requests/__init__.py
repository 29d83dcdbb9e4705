"""A stand-in for requests (the reference interpreter lacks it; CI has no network): `get` of
the Cora URL that pytorch/examples gcn and gat download answers with a synthetic Cora
tarball in Cora's file format (cora/cora.content: id, binary word features, class name;
cora/cora.cites: cited id, citing id), sizes from GRADJIT_FAKE_CORA="nodes,features,classes"
(default 1700,24,4: gat and gcn split off 1500-1600 nodes for testing and validation). Any
other URL raises ConnectionError."""
import io
import os
import random
import tarfile

CORA_URL = "https://linqs-data.soe.ucsc.edu/public/lbc/cora.tgz"


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


class _Response:
    def __init__(self, payload: bytes):
        self.raw = io.BytesIO(payload)
        self.status_code = 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def get(url, stream=False, **kwargs):
    if url != CORA_URL:
        raise ConnectionError(f"no network here (the stand-in serves only {CORA_URL})")
    sizes = [int(v) for v in os.environ.get("GRADJIT_FAKE_CORA", "1700,24,4").split(",")]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in synthetic_cora(*sizes).items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return _Response(buffer.getvalue())
