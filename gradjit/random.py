"""jax.random for gradjit: keys as values and the distributions drawn from them, computed by
Threefry-2x32 in IR (tracer/random)."""
from tracer.random import *  # noqa: F401,F403
from tracer.random import __all__  # noqa: F401
