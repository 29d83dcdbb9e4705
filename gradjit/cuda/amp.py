"""torch.cuda.amp for gradjit: the deprecated CUDA spellings of torch.amp, which on a
machine without CUDA warn and disable themselves (tracer/amp.py)."""
from tracer.amp import CudaAutocast as autocast, CudaGradScaler as GradScaler

from gradjit._missing import missing_names

__all__ = ["GradScaler", "autocast"]
__getattr__ = missing_names("torch.cuda.amp", __name__)
