"""torch.utils.data for gradjit: Dataset, TensorDataset, DataLoader, random_split, the
samplers, ... (a package, as PyTorch's: `from torch.utils.data.dataloader import
DataLoader` works too)."""
from tracer.data import *  # noqa: F401,F403
from tracer.data import __all__ as _data_names
from tracer.samplers import *  # noqa: F401,F403
from tracer.samplers import __all__ as _sampler_names

from gradjit._missing import missing_names
from gradjit.utils.data import dataloader, dataset, sampler  # noqa: F401  submodules

__all__ = list(_data_names) + list(_sampler_names)
__getattr__ = missing_names("torch.utils.data", __name__)
