"""gradjit's front end: Tensor, tracing, the op surface, transforms and the imperative API.

Importing the package attaches the Tensor surface (tracer/surface.py) once, so any import
of a tracer module sees a complete Tensor.
"""
from tracer import surface

surface.install()
