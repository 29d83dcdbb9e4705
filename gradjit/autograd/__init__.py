"""torch.autograd for gradjit (`from gradjit.autograd import Function`)."""
from tracer.autograd import *  # noqa: F401,F403
from tracer.autograd import __all__ as _names
from tracer.autograd import function, graph  # noqa: F401  torch.autograd.function, .graph
from tracer.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: F401
from tracer.autograd.variable import Variable  # noqa: F401

from gradjit._missing import missing_names
from gradjit.autograd import functional  # noqa: F401


__all__ = [*_names, "function", "graph", "functional", "gradcheck", "gradgradcheck",
           "GradcheckError", "Variable"]
__getattr__ = missing_names("torch.autograd", __name__)
