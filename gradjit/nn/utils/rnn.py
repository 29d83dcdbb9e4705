"""torch.nn.utils.rnn for gradjit: pad_sequence."""
from tracer.nn.utils import pad_sequence  # noqa: F401

from gradjit._missing import missing_names

__all__ = ["pad_sequence"]
__getattr__ = missing_names("torch.nn.utils.rnn", __name__)
