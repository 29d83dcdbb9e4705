"""torch.utils for gradjit: data (datasets, DataLoader) and checkpoint."""
from gradjit._missing import missing_names
from gradjit.utils import checkpoint, data  # noqa: F401

__all__ = ["data", "checkpoint"]
__getattr__ = missing_names("torch.utils", __name__)
