"""torch.nn for gradjit (`import gradjit.nn as nn`): Module, Parameter, layers, losses."""
from tracer.nn import *  # noqa: F401,F403
from tracer.nn import __all__ as _layers

from gradjit._missing import missing_names
from gradjit.nn import functional, init, modules, utils  # noqa: F401

__all__ = [*_layers, "utils"]
__getattr__ = missing_names("torch.nn", __name__)
