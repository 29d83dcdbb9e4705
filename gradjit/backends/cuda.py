"""torch.backends.cuda for gradjit: not built (gradjit compiles for the CPU). The flags
scripts set (`torch.backends.cuda.matmul.allow_tf32 = True`) are attributes with PyTorch's
defaults; they change nothing on the CPU."""
from gradjit._missing import missing_names

__all__ = ["is_built", "matmul"]

_MATMUL_DEFAULTS = {"allow_tf32": False, "allow_fp16_reduced_precision_reduction": True,
                    "allow_bf16_reduced_precision_reduction": True}


class _MatmulFlags:
    """torch.backends.cuda.matmul: its settable flags; any other name raises PyTorch's
    AttributeError."""

    def __init__(self):
        object.__setattr__(self, "_flags", dict(_MATMUL_DEFAULTS))

    def __getattr__(self, name):
        if name in self._flags:
            return self._flags[name]
        raise AttributeError("Unknown attribute " + name)

    def __setattr__(self, name, value):
        if name not in self._flags:
            raise AttributeError("Unknown attribute " + name)
        self._flags[name] = value


matmul = _MatmulFlags()


def is_built() -> bool:
    return False


__getattr__ = missing_names("torch.backends.cuda", __name__)
