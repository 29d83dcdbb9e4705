"""A stand-in for IPython (not installed here): pytorch/tutorials nn_tutorial.py imports
`IPython.core.debugger.set_trace` and leaves its call commented out."""
