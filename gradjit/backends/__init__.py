"""torch.backends for gradjit: the accelerator backends scripts query (none is available)."""
from gradjit._missing import missing_names
from gradjit.backends import cudnn, mps  # noqa: F401

__all__ = ["cudnn", "mps"]
__getattr__ = missing_names("torch.backends", __name__)
