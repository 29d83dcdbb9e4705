"""torch.nn.functional for gradjit (`import gradjit.nn.functional as F`)."""
from tracer.nn.functional import *  # noqa: F401,F403
from tracer.nn.functional import __all__  # noqa: F401

from gradjit._missing import missing_names

__getattr__ = missing_names("torch.nn.functional", __name__)
