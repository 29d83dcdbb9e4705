"""Whose meaning a spelling that PyTorch and NumPy/JAX share takes in this process.

`gradjit torch script.py` runs PyTorch code: there `torch.var(x, axis=0)` is PyTorch's alias
of dim= (Bessel-corrected). Everywhere else gradjit's own namespace is NumPy's/JAX's for those
spellings (`gj.var(x, axis=0)` is ddof=0). The drop-in runner switches the process once,
before the script is imported; nothing switches it back (the process is the script's).
"""
from __future__ import annotations

_torch_script = False


def use_torch_spellings() -> None:
    """From now on this process is a PyTorch script (called by gradjit.dropin.install)."""
    global _torch_script
    _torch_script = True


def torch_spellings() -> bool:
    """True under `gradjit torch`: spellings PyTorch shares with NumPy take PyTorch's meaning."""
    return _torch_script
