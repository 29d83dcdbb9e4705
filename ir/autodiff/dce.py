"""Dead-code elimination for the ops the autodiff transforms emit, with result pruning.

Rules compute cotangents for every floating-point operand; the ones nobody asked for die
here. For cond and scan that means more than dropping whole ops: a control op whose results
are partly unused is rebuilt with smaller regions (a scan also loses the carries that only
fed dead values), so the cotangent of, say, a scan's data xs is never computed. The
machinery is the optimizer's (ir/passes/dce.py); this module names what autodiff uses.
"""
from __future__ import annotations

from ir.passes.dce import dce_function, dce_ops, used_values

__all__ = ["dce_ops", "dce_function", "used_values"]
