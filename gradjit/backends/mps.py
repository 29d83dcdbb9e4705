"""torch.backends.mps for gradjit: not available (gradjit compiles for the CPU)."""
from tracer.device import is_available, is_built  # noqa: F401

from gradjit._missing import missing_names

__all__ = ["is_available", "is_built"]
__getattr__ = missing_names("torch.backends.mps", __name__)
