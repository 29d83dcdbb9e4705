"""PyTorch-style imperative autograd on gradjit's lazy Expr graph (docs/api.md section 2).

    x = gj.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()          # recorded lazily; loss.grad_fn is <SumBackward0>
    loss.backward()               # one compiled program: forward + reverse pass
    x.grad                        # tensor([2., 4.])

Modules: grad_mode (no_grad, enable_grad, set_grad_enabled), nodes (grad_fn classes,
AccumulateGrad, saved-tensor checks), recording (the hook that attaches nodes to recorded
ops), engine (backward, grad: emits one IR Function per call; its docstring describes the
design), emitter (the Builder side), graph (walks), function (custom autograd.Function),
hooks (Tensor.register_hook), inplace (in-place methods and version counters), views
(storage shared by views and aliases).
"""
from tracer.autograd.engine import backward, grad
from tracer.autograd.function import Function, FunctionCtx
from tracer.autograd.graphviz import to_dot
from tracer.autograd.grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                                       set_grad_enabled)
from tracer.autograd.nodes import Node

graph = type("graph", (), {"Node": Node})       # torch.autograd.graph.Node, for isinstance

__all__ = ["grad", "backward", "Function", "FunctionCtx", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "inference_mode", "to_dot"]
