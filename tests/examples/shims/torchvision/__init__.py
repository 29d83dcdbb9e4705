"""A stand-in for torchvision (absent here, and CI has no network): only what the MNIST
example imports, `datasets.MNIST` as a small synthetic, learnable data set and
`transforms.Compose/ToTensor/Normalize`. Used by tests/examples/acceptance.py alone."""
from . import datasets, transforms  # noqa: F401
