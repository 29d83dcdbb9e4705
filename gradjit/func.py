"""torch.func for gradjit: grad, grad_and_value, vmap, jacrev, jacfwd, hessian, vjp, jvp,
functional_call (compiled functional transforms)."""
from tracer.func import (functional_call, grad, grad_and_value, hessian, jacfwd,  # noqa: F401
                         jacrev, jvp, linearize, vjp, vmap)

from gradjit._missing import missing_names

__all__ = ["grad", "grad_and_value", "vmap", "jacrev", "jacfwd", "hessian", "vjp", "jvp",
           "linearize", "functional_call"]
__getattr__ = missing_names("torch.func", __name__)
