"""torch.autograd.functional for gradjit: jacobian, hessian, vjp, jvp, hvp, vhp."""
from tracer.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp  # noqa: F401

from gradjit._missing import missing_names

__all__ = ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"]
__getattr__ = missing_names("torch.autograd.functional", __name__)
