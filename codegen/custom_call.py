"""Kernel rules of the calls to user code: custom_vjp_call / custom_jvp_call run their body
(region 0), debug_print calls back into Python.

The other regions of a custom call (the user's fwd/bwd or jvp rules) are derivative rules:
the autodiff transforms inline them before code generation, so only the body is lowered
(`lowered_regions`). debug_print copies its operands to its results and calls the external
`gradjit_debug_print(spec, buffers)` that the runtime registers (runtime/debug_callback.py):
spec is a constant JSON string naming the format and the buffers' types (ir/debug_print.py),
so object code read back from the disk cache needs nothing else.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.control import call_region, copy, pointer_array
from codegen.kernels import KernelCall, kernel_rules
from codegen.loops import I8, PTR, declare
from ir import debug_print
from ir.core import Op

DEBUG_PRINT_SYMBOL = "gradjit_debug_print"

CUSTOM_CALLS = ("custom_vjp_call", "custom_jvp_call")


def lowered_regions(op: Op) -> tuple:
    """The regions of op that native code calls (all but a custom call's rules)."""
    return op.regions[:1] if op.prim.name in CUSTOM_CALLS else op.regions


def _call_body(k: KernelCall):
    ptrs = [k.buffer(v).ptr for v in k.op.inputs] + [k.buffer(r).ptr for r in k.op.results]
    call_region(k, 0, pointer_array(k, ptrs))


kernel_rules.update({name: _call_body for name in CUSTOM_CALLS})


def _debug_print(k: KernelCall):
    bld, op = k.bld, k.op
    for x, r in zip(op.inputs, op.results):
        copy(bld, k.buffer(r), k.buffer(x))
    p = op.params
    text = debug_print.spec(p["fmt"], p["names"], p["batch_dims"],
                            [x.type for x in op.inputs]).encode() + b"\0"
    module = bld.module
    spec = ll.GlobalVariable(module, ll.ArrayType(I8, len(text)),
                             module.get_unique_name("gj_print_spec"))
    spec.global_constant, spec.linkage = True, "internal"
    spec.initializer = ll.Constant(ll.ArrayType(I8, len(text)), bytearray(text))
    callback = declare(module, DEBUG_PRINT_SYMBOL, ll.VoidType(), [PTR, PTR])
    bld.call(callback, [spec, pointer_array(k, [k.buffer(r).ptr for r in op.results])])


kernel_rules["debug_print"] = _debug_print
