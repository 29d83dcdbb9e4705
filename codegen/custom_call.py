"""Kernel rules of custom_vjp_call / custom_jvp_call: native code runs the body (region 0).

The other regions (the user's fwd/bwd or jvp rules) are derivative rules: the autodiff
transforms inline them before code generation, so only the body is lowered (`lowered_regions`).
"""
from __future__ import annotations

from codegen.control import call_region, pointer_array
from codegen.kernels import KernelCall, kernel_rules
from ir.core import Op

CUSTOM_CALLS = ("custom_vjp_call", "custom_jvp_call")


def lowered_regions(op: Op) -> tuple:
    """The regions of op that native code calls (all but a custom call's rules)."""
    return op.regions[:1] if op.prim.name in CUSTOM_CALLS else op.regions


def _call_body(k: KernelCall):
    ptrs = [k.buffer(v).ptr for v in k.op.inputs] + [k.buffer(r).ptr for r in k.op.results]
    call_region(k, 0, pointer_array(k, ptrs))


kernel_rules.update({name: _call_body for name in CUSTOM_CALLS})
