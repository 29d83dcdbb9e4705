"""torch.accelerator for gradjit: no accelerator (gradjit compiles for the CPU), so scripts
that ask `torch.accelerator.is_available()` choose the CPU, as PyTorch on a CPU-only machine."""
from gradjit._missing import missing_names

__all__ = ["is_available", "current_accelerator", "device_count", "synchronize"]


def is_available() -> bool:
    """False: there is no accelerator."""
    return False


def current_accelerator(check_available: bool = False):
    """None, as PyTorch's on a machine without an accelerator."""
    return None


def device_count() -> int:
    return 0


def synchronize(device=None) -> None:
    """Nothing to wait for."""


__getattr__ = missing_names("torch.accelerator", __name__)
