"""Automatic differentiation as IR -> IR transforms.

    vjp(fn, wrt=None)    reverse mode: primal results + cotangents of the wrt params
    jvp(fn, wrt=None)    forward mode: primal results + tangents of the float results
    grad(fn, wrt=None)   value and gradient of a scalar function

vjp_rules / jvp_rules hold one rule per primitive, written in IR primitives through a
Builder (tests/test_rules_complete.py checks that every primitive has both).
"""
from ir.autodiff.vjp_rules import vjp_rules
from ir.autodiff.jvp_rules import jvp_rules
from ir.autodiff.transforms import grad, jvp, vjp
from ir.autodiff import control  # noqa: F401  (registers the cond/scan/while rules)
from ir.autodiff import custom  # noqa: F401  (registers the custom_vjp/custom_jvp call rules)

__all__ = ["vjp", "jvp", "grad", "vjp_rules", "jvp_rules"]
