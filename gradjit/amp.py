"""torch.amp for gradjit (tracer/amp.py): `GradScaler`, `autocast`."""
from tracer.amp import GradScaler, autocast, is_autocast_available

from gradjit._missing import missing_names

__all__ = ["GradScaler", "autocast", "is_autocast_available"]
__getattr__ = missing_names("torch.amp", __name__)
