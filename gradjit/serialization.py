"""torch.serialization for gradjit: save/load and the weights_only allowlist."""
from tracer.serialization import load, save  # noqa: F401
from tracer.serialization_objects import (  # noqa: F401
    add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals)

from gradjit._missing import missing_names

__all__ = ["save", "load", "add_safe_globals", "clear_safe_globals", "get_safe_globals",
           "safe_globals"]
__getattr__ = missing_names("torch.serialization", __name__)
