"""torch.utils.data.dataset: the dataset classes and random_split."""
from tracer.data import (ConcatDataset, Dataset, IterableDataset, Subset,  # noqa: F401
                         TensorDataset, random_split)

from gradjit._missing import missing_names

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "random_split"]
__getattr__ = missing_names("torch.utils.data.dataset", __name__)
