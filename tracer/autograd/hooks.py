"""Tensor hooks (`t.register_hook(fn)`): functions of a gradient, traced into the backward IR.

A hook is called with a symbolic Tensor standing for the gradient, under no_grad; what it
returns (a Tensor of the gradient's shape, or None to keep it) is cut into a Function and
inlined where the gradient flows, so hooks are compiled with the rest of the backward pass.
Like a custom Function's backward, a hook must not read the gradient's data (no print of
its values, no `if grad.sum() > 0:`); doing so raises TracerError naming the line.
"""
from __future__ import annotations

from tracer.autograd.grad_mode import no_grad
from tracer.autograd.nodes import accumulate_node
from tracer.expr import build_function, param_expr
from tracer.tensor import Tensor


class RemovableHandle:
    """What register_hook returns: .remove() unregisters the hook."""

    def __init__(self, table: dict, nr: int, hook):
        self._table = table
        self._nr = nr
        self._hook = hook

    def remove(self):
        hooks = self._table.get(self._nr)
        if hooks is not None and self._hook in hooks:
            hooks.remove(self._hook)
            if not hooks:       # an empty table: the node replays and follows again
                del self._table[self._nr]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def register_tensor_hook(t: Tensor, hook) -> RemovableHandle:
    """t.register_hook(hook): hook(grad) -> Tensor or None, called (traced into the backward
    IR) on t's gradient before it flows on; returns a handle with .remove()."""
    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if t._grad_fn is not None:
        node, nr = t._grad_fn, t._output_nr
    else:
        node, nr = accumulate_node(t), 0
    node.hooks.setdefault(nr, []).append(hook)
    return RemovableHandle(node.hooks, nr, hook)


def apply_hooks(node, em, out_cts: list) -> list:
    """node's output cotangents after the tensor hooks registered on them (traced)."""
    if not node.hooks:
        return out_cts
    return [run_hooks(em, node.hooks.get(i, ()), g) if g is not None else None
            for i, g in enumerate(out_cts)]


def run_hooks(em, hooks, g):
    """Applies each hook to the gradient Value g inside the Emitter em."""
    for hook in list(hooks):
        p = param_expr(g.type, "grad")
        with no_grad():
            out = hook(Tensor(p))
        if out is None:
            continue
        if not isinstance(out, Tensor) or out._expr.type != g.type:
            got = out._expr.type if isinstance(out, Tensor) else type(out).__name__
            raise RuntimeError(f"hook '{getattr(hook, '__name__', hook)}' has changed the "
                               f"type of value (was {g.type} got {got})")
        fn, captures = build_function("hook", [p], [out._expr])
        g = em.b.inline(fn, [g] + [em.value(c) for c in captures])[0]
    return g
