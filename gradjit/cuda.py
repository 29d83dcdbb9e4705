"""torch.cuda for gradjit: no CUDA here (gradjit compiles for the CPU), so device-agnostic
scripts (`"cuda" if torch.cuda.is_available() else "cpu"`) choose the CPU."""
from tracer.device import (current_device, device_count, is_available,  # noqa: F401
                           manual_seed, manual_seed_all, synchronize)
from tracer.device import CUDA_ALL as __all__  # noqa: F401

from gradjit._missing import missing_names

__getattr__ = missing_names("torch.cuda", __name__)
