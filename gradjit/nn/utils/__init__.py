"""torch.nn.utils for gradjit: gradient clipping, parameters as one vector."""
from tracer.nn.utils import *  # noqa: F401,F403
from tracer.nn.utils import __all__ as _utils

from gradjit._missing import missing_names
from gradjit.nn.utils import rnn  # noqa: F401

__all__ = [*_utils, "rnn"]
__getattr__ = missing_names("torch.nn.utils", __name__)
