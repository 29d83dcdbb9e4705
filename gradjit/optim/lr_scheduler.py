"""torch.optim.lr_scheduler for gradjit (`from gradjit.optim.lr_scheduler import StepLR`)."""
from tracer.optim.lr_scheduler import *  # noqa: F401,F403
from tracer.optim.lr_scheduler import __all__  # noqa: F401

from gradjit._missing import missing_names

__getattr__ = missing_names("torch.optim.lr_scheduler", __name__)
