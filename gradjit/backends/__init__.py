"""torch.backends for gradjit: the accelerator backends scripts query (none is available)."""
from gradjit._missing import missing_names
from gradjit.backends import cuda, cudnn, mps  # noqa: F401

__all__ = ["cuda", "cudnn", "mps"]
__getattr__ = missing_names("torch.backends", __name__)
