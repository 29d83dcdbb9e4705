"""torch.nn for gradjit (`import gradjit.nn as nn`): Module, Parameter, layers, losses."""
from tracer.nn import *  # noqa: F401,F403
from tracer.nn import __all__ as _layers

from gradjit._missing import missing_names
from gradjit.nn import functional, init, modules, parallel, utils  # noqa: F401
from gradjit.nn.parallel import DataParallel

__all__ = [*_layers, "utils", "parallel", "DataParallel"]
__getattr__ = missing_names("torch.nn", __name__)
