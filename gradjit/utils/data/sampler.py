"""torch.utils.data.sampler: the samplers."""
from tracer.samplers import *  # noqa: F401,F403
from tracer.samplers import __all__  # noqa: F401

from gradjit._missing import missing_names

__getattr__ = missing_names("torch.utils.data.sampler", __name__)
