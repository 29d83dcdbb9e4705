"""torch.nn.init for gradjit."""
from tracer.nn.init import *  # noqa: F401,F403
from tracer.nn.init import __all__  # noqa: F401

from gradjit._missing import missing_names

__getattr__ = missing_names("torch.nn.init", __name__)
