"""jax.debug for gradjit: debug.print from inside traced and compiled code (tracer/debug.py)."""
from tracer.debug import print  # noqa: A004

__all__ = ["print"]
