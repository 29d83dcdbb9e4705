"""A stand-in for torchvision (absent here, and CI has no network): only what the examples
import, with synthetic data: `datasets.MNIST` (a small learnable set), `datasets.FakeData`,
`transforms.Compose/ToTensor/Normalize/Lambda` and `utils.save_image` (writes an empty file).
Used by tests/examples/acceptance.py alone."""
from . import datasets, transforms, utils  # noqa: F401
