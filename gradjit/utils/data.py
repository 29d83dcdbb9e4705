"""torch.utils.data for gradjit: Dataset, TensorDataset, DataLoader, random_split, ..."""
from tracer.data import *  # noqa: F401,F403
from tracer.data import __all__  # noqa: F401

from gradjit._missing import missing_names

__getattr__ = missing_names("torch.utils.data", __name__)
