"""torch.cuda for gradjit: no CUDA here (gradjit compiles for the CPU), so device-agnostic
scripts (`"cuda" if torch.cuda.is_available() else "cpu"`) choose the CPU."""
from tracer.device import (current_device, device_count, is_available,  # noqa: F401
                           manual_seed, manual_seed_all, synchronize)
from tracer.device import CUDA_ALL

from gradjit._missing import missing_names
from gradjit.cuda import amp  # noqa: F401

__all__ = [*CUDA_ALL, "amp", "is_bf16_supported"]


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False, as PyTorch answers without CUDA (nanoGPT picks its dtype by it)."""
    return False


__getattr__ = missing_names("torch.cuda", __name__)
