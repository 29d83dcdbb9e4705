"""Devices, as PyTorch names them: gradjit compiles for the CPU only.

`device("cpu")`, `device("cpu:0")`, `device("cpu", 0)` compare and print as PyTorch's;
`device("cuda")` can be made (as in PyTorch without CUDA), but using it (`.to("cuda")`,
`zeros(..., device="cuda")`, `.cuda()`, `set_default_device("cuda")`) raises PyTorch's
AssertionError with a sentence saying why. `cuda` and `mps` availability queries answer
"no", so device-agnostic scripts (`"cuda" if torch.cuda.is_available() else "cpu"`) pick
the CPU.
"""
from __future__ import annotations

__all__ = ["device", "set_default_device", "get_default_device"]

CUDA_ERROR = ("Torch not compiled with CUDA enabled (gradjit compiles for the CPU only: "
              "use device='cpu', or 'cuda' if torch.cuda.is_available() else 'cpu')")

# PyTorch's list, in its order, for the error text of an unknown device type
_TYPES = ("cpu cuda ipu xpu mkldnn opengl opencl ideep hip ve fpga maia xla lazy vulkan mps "
          "meta hpu mtia privateuseone").split()


class device:
    """torch.device: a type ('cpu', 'cuda', ...) and an optional index."""
    __slots__ = ("type", "index")

    def __init__(self, type, index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        elif isinstance(type, int) and not isinstance(type, bool):
            raise RuntimeError("Cannot access accelerator device when none is available.")
        elif not isinstance(type, str):
            raise TypeError(f"device() received an invalid combination of arguments - got "
                            f"({type.__class__.__name__})")
        name, _, number = type.partition(":")
        if name not in _TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_TYPES)} device type at start of "
                               f"device string: {type}")
        if number:
            if not number.isdigit() or index is not None:
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(number)
        object.__setattr__(self, "type", name)
        object.__setattr__(self, "index", None if index is None else int(index))

    def __setattr__(self, name, value):
        raise AttributeError(f"attribute '{name}' of 'torch.device' objects is not writable")

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        # as PyTorch: a device equals a device, never a string (device("cpu") != "cpu")
        if not isinstance(other, device):
            return NotImplemented
        return (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (self.type, self.index))


CPU = device("cpu")
_default = [CPU]


def check(dev) -> None:
    """Accepts None or any spelling of the CPU; anything else raises as PyTorch does
    without that backend (device strings are checked by device())."""
    if dev is None:
        return
    d = dev if isinstance(dev, device) else device(dev)
    if d.type == "cpu":
        return
    if d.type == "cuda":
        raise AssertionError(CUDA_ERROR)
    raise RuntimeError(f"gradjit compiles for the CPU only: device '{d}' is not available")


def set_default_device(device) -> None:
    """torch.set_default_device: only the CPU (or None) is accepted."""
    check(device)
    _default[0] = CPU


def get_default_device() -> device:
    return _default[0]


# ---- torch.cuda and torch.backends.mps (gradjit/cuda, gradjit/backends) ----

def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_built() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """torch.cuda.manual_seed(_all): no CUDA generator to seed (PyTorch also ignores it)."""


def synchronize(dev=None) -> None:
    """Nothing runs asynchronously on a device."""


def current_device() -> int:
    raise AssertionError(CUDA_ERROR)


CUDA_ALL = ["is_available", "device_count", "manual_seed", "manual_seed_all", "synchronize",
            "current_device"]
manual_seed_all = manual_seed
