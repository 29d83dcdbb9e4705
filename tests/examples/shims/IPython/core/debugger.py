"""set_trace: Python's own debugger (what IPython's would open, without its shell)."""
from pdb import set_trace  # noqa: F401
