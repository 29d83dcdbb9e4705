"""DistributedDataParallel(model, ctx): PyTorch's DDP for dist.run workers.

Construction copies rank 0's parameters to every rank (so all start equal). Each forward
through the wrapper arms a gradient sync; the next `backward()` on this process then
averages every parameter's .grad over the ranks with ONE all-reduce of all gradients
flattened into one buffer. Parameters without a gradient on this rank contribute zeros (and
receive the average), so every rank sends the same buffer layout.

PyTorch's DDP syncs from its reducer's autograd hooks; here the sync runs from
tracer.surface's `after_backward` hooks of `Tensor.backward`, registered once per process,
in worker processes only when a DDP is built there. `ddp.sync_gradients()` does
the same explicitly (after `gj.autograd.backward(...)`, say); `with ddp.no_sync():` skips
syncs for gradient accumulation, as in PyTorch.
"""
from __future__ import annotations

import contextlib
import weakref

from tracer import surface
from tracer.creation import zeros_like
from tracer.nn.module import Module
from tracer.staging import as_tensor
from tracer.tensor import Tensor

_armed: weakref.WeakSet = weakref.WeakSet()      # DDPs whose forward awaits a backward


def _sync_armed():
    """After a Tensor.backward(): the all-reduce of each DDP whose forward awaited one."""
    for ddp in list(_armed):
        _armed.discard(ddp)
        ddp.sync_gradients()


def _install_backward_sync():
    if _sync_armed not in surface.after_backward:
        surface.after_backward.append(_sync_armed)


class DistributedDataParallel(Module):
    """model wrapped for data-parallel training across a dist.run context's ranks."""

    def __init__(self, module: Module, ctx, broadcast_parameters: bool = True):
        super().__init__()
        self.module = module
        object.__setattr__(self, "ctx", ctx)
        object.__setattr__(self, "require_backward_grad_sync", True)
        object.__setattr__(self, "syncs", 0)
        if broadcast_parameters and ctx.world_size > 1:
            params = list(module.parameters())
            for p, value in zip(params, ctx.broadcast([p.detach() for p in params])):
                p.data = value
        _install_backward_sync()

    def forward(self, *args, **kwargs):
        if self.require_backward_grad_sync:
            _armed.add(self)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients accumulate locally inside; the first backward after it syncs."""
        object.__setattr__(self, "require_backward_grad_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "require_backward_grad_sync", True)

    def sync_gradients(self):
        """Every trainable parameter's .grad := its mean over the ranks (one all-reduce)."""
        params = [p for p in self.module.parameters() if p.requires_grad]
        if not params:
            return
        grads = [p.grad if p.grad is not None else zeros_like(p) for p in params]
        averaged = self.ctx.all_reduce([g.detach() for g in grads], op="mean")
        for p, g in zip(params, averaged):
            p.grad = as_tensor(g) if not isinstance(g, Tensor) else g
        object.__setattr__(self, "syncs", self.syncs + 1)
