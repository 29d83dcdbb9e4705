"""torch.backends.cudnn for gradjit: not available, as in a CPU build of PyTorch. The flags
scripts set (`cudnn.benchmark = True`, `deterministic`) are plain module attributes with
PyTorch's defaults; they change nothing on the CPU."""
from gradjit._missing import missing_names

__all__ = ["is_available", "version", "enabled", "benchmark", "deterministic", "allow_tf32"]

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> None:
    return None


__getattr__ = missing_names("torch.backends.cudnn", __name__)
