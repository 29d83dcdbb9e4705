"""Python data (numbers, nested lists) as the NumPy array of a tensor of a given dtype, with
PyTorch's errors for integers that dtype cannot hold (torch.tensor, torch.full)."""
from __future__ import annotations

import numpy as np

from ir.core import DTYPES


def array_of(plain, dtype: str) -> np.ndarray:
    """np.array(plain) for a tensor of dtype. NumPy makes Python ints past int64 a uint64
    or object array, which the cast to the tensor's dtype wrapped silently
    (`tensor([2**63])` was -2**63): an integer that dtype cannot hold is PyTorch's error, and
    a float tensor takes such ints rounded (`tensor([1.5, 2**70])`)."""
    arr = np.array(plain)
    if arr.dtype == object and any(isinstance(x, (list, tuple, np.ndarray)) for x in arr.flat):
        raise ValueError("expected sequence of equal length lists (a ragged nested sequence "
                         "cannot become a tensor)")
    if dtype in ("i32", "i64") and arr.size:    # (ints past int64 made it u, O or even f)
        check_fits([int(arr.min()), int(arr.max())] if arr.dtype.kind == "i" else
                    _python_ints(plain), dtype)
    if arr.dtype == object:     # numbers only (ints past int64 and maybe floats)
        arr = np.array(arr.tolist(), dtype=np.float64) if dtype in ("f32", "f64") else \
            np.array([bool(x) for x in arr.flat]).reshape(arr.shape)
    return arr


def _python_ints(plain) -> list:
    """The Python ints (not bools) of nested lists."""
    out, stack = [], [plain]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, int) and not isinstance(x, bool):
            out.append(x)
    return out


def check_fits(values, dtype: str):
    """PyTorch's errors for an integer that the integer dtype cannot hold."""
    info = np.iinfo(DTYPES[dtype])
    bad = [v for v in values if not info.min <= v <= info.max]
    if not bad:
        return
    if not -(1 << 63) <= bad[0] < 1 << 63:
        raise ValueError(f"Overflow when unpacking long long ({bad[0]} does not fit int64)")
    raise RuntimeError(f"value cannot be converted to type {_C_NAMES[dtype]} without overflow "
                       f"({bad[0]})")


_C_NAMES = {"i32": "int32", "i64": "int64_t"}
