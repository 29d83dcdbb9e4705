"""torch.optim for gradjit (`from gradjit.optim import Adam`)."""
from tracer.optim import *  # noqa: F401,F403
from tracer.optim import __all__  # noqa: F401

from gradjit._missing import missing_names

__getattr__ = missing_names("torch.optim", __name__)
