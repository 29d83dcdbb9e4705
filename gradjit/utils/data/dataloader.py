"""torch.utils.data.dataloader: DataLoader and default_collate."""
from tracer.data import DataLoader, default_collate  # noqa: F401

from gradjit._missing import missing_names

__all__ = ["DataLoader", "default_collate"]
__getattr__ = missing_names("torch.utils.data.dataloader", __name__)
