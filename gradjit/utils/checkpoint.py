"""torch.utils.checkpoint for gradjit."""
from tracer.func import checkpoint_call as checkpoint, checkpoint_sequential  # noqa: F401

from gradjit._missing import missing_names

__all__ = ["checkpoint", "checkpoint_sequential"]
__getattr__ = missing_names("torch.utils.checkpoint", __name__)
