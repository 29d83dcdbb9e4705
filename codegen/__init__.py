"""gradjit's code generator: fusion planning and LLVM IR emission (llvmlite.ir) for IR Functions.

`lower_function(fn)` returns a KernelSource: the module text and the entry symbol, called as
`void entry(ptr buffers, ptr workspace)` (see codegen.emit). Lowering rules live in one table
per kind, each keyed by primitive name: scalar rules for elementwise ops (lower.scalar_rules),
elemental rules for index-remapping, creation and reduction ops (elemental.elemental_rules)
and kernel rules for the rest (kernels.kernel_rules, control flow included).
`lower.lower_rules` is their union: the layer's one registry, checked for completeness.
"""
import sys as _sys

from codegen import control as _control  # noqa: F401  (registers the control-flow kernels)
from codegen import custom_call as _custom_call  # noqa: F401  (custom_vjp/jvp calls)
from codegen import lapack as _lapack  # noqa: F401  (registers the linear-algebra kernels)
from codegen import cumulative as _cumulative  # noqa: F401  (registers cumsum, cummax, ...)
from codegen import sorting as _sorting  # noqa: F401  (registers sort)
from codegen.elemental import elemental_rules
from codegen.emit import KernelSource, lower_function
from codegen.kernels import kernel_rules
from codegen.lower import lower_rules, scalar_rules

for _table in (scalar_rules, elemental_rules, kernel_rules):
    lower_rules.update(_table)

# every codegen module's namespace as imported (this package imports them all, and importing
# any one runs it first): runtime/code_switches.py puts those changed later in the disk
# cache's key (copies, so an in-process change of a switch shows)
IMPORTED_NAMESPACES = {_name: dict(vars(_module)) for _name, _module in list(_sys.modules.items())
                       if _name.startswith("codegen.") and _module is not None}

__all__ = ["KernelSource", "lower_function", "lower_rules", "scalar_rules", "elemental_rules",
           "kernel_rules"]
