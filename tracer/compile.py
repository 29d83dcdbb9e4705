"""gradjit.compile, spelled like torch.compile.

For a Module, the compiled forward takes the module's parameters and buffers as inputs of
the jitted program (not as constants captured at trace time), so gradients reach the
parameters through the imperative autograd graph and an optimizer's in-place updates are
seen by the next call. The module's training flags are part of the cache key: train and
eval mode each compile once. Buffers a training forward changes (running statistics) are
outputs of the program and written back. For a plain function, compile is `jit`: a
compiled call on Tensors that require grad is one node of the autograd graph.
"""
from __future__ import annotations

import functools

from tracer import bounded
from tracer.api import jit
from tracer.autograd.grad_mode import is_grad_enabled, no_grad
from tracer.autograd.recording import record_call
from tracer.fn_replay import FunctionReplay, fresh_results
from tracer.func import _swapped
from tracer.nn.module import GENERATION, Module
from tracer.pytree import tree_unflatten
from tracer.staging import apply_to, to_expr, wrap_results
from tracer.tensor import Tensor, realize

__all__ = ["compile"]

# calls that recorded the forward through a cached _ForwardPlan, and plans built (tests)
STATS = {"plan_calls": 0, "plans_built": 0}

MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend="inductor",
            mode=None, options=None, disable: bool = False):
    """torch.compile: a Module or function compiled by gradjit's tracing JIT.

    mode, fullgraph, dynamic, backend and options are accepted for PyTorch compatibility:
    gradjit always traces the whole call into one program per input signature. Used as a
    decorator with or without arguments. disable=True returns model unchanged.
    """
    if mode not in MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: "
                           + ", ".join(str(m) for m in MODES[1:]))
    if model is None:
        return functools.partial(compile, fullgraph=fullgraph, dynamic=dynamic,
                                 backend=backend, mode=mode, options=options, disable=disable)
    if disable:
        return model
    if isinstance(model, Module):
        return OptimizedModule(model)
    if not callable(model):
        raise RuntimeError(f"compile: expected a Module or a callable, got "
                           f"{type(model).__name__}")
    return functools.wraps(model)(jit(model))


class OptimizedModule(Module):
    """What compile(module) returns: calls run the module's forward compiled; parameters,
    state_dict (keys prefixed `_orig_mod.`, as PyTorch's) and train/eval are the module's."""

    def __init__(self, mod: Module):
        super().__init__()
        self._orig_mod = mod
        object.__setattr__(self, "_compiled", {})
        # per grad mode: the _ForwardPlan of the last call (grad: a training call recorded
        # for backward; no grad: the program run on realised arrays)
        object.__setattr__(self, "_plans", {})

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["_orig_mod"], name)

    def _program(self):
        mod = self._orig_mod
        key = tuple(m.training for m in mod.modules())
        program = self._compiled.get(key)
        if program is None:
            def forward(params, buffers, args, kwargs):
                tensors = dict(params, **buffers)
                before = {name: b._expr for name, b in buffers.items()}
                with _swapped(mod, tensors):
                    out = mod(*args, **kwargs)
                    now = dict(mod.named_buffers())
                # only the buffers the forward changed (BatchNorm's statistics) are results
                # written back: a copy_ of an unchanged one (a causal mask) would be a pending
                # in-place update every step, which stops the backward's replay
                return out, {name: now[name] for name in buffers
                             if now.get(name) is not None and now[name]._expr is not before[name]}
            forward.__name__ = f"{type(mod).__name__}_forward"
            program = self._compiled[key] = jit(forward)
        return program

    def forward(self, *args, **kwargs):
        grad = is_grad_enabled()
        plan = self._plans.get(grad)
        if plan is not None and not kwargs and plan.generation == GENERATION[0]:
            out = plan.run(args) if grad else plan.run_concrete(args)
            if out is not _MISS:
                return out
        mod = self._orig_mod
        params = dict(mod.named_parameters())
        buffers = {k: b for k, b in mod.named_buffers() if b is not None}
        call = (params, buffers, args, kwargs)
        generation = GENERATION[0]
        staged = self._program()
        sig = staged.signature(call, {})
        entry = staged.entry(sig)
        pending = grad and any(p.requires_grad for p in params.values())
        if pending:
            out, new_buffers = _pending_call(entry, sig)
        else:
            out, new_buffers = tree_unflatten(entry.out_tree, entry.call(sig.arrays))
        if (pending or not grad) and not kwargs and GENERATION[0] == generation:
            # (a trace in between changed the tables: the next call builds the plan)
            self._plans[grad] = _ForwardPlan.build(generation, mod, params, buffers, args,
                                                   sig, entry)
        if mod.training and new_buffers:
            _write_back(buffers, new_buffers)
        return out

    def __repr__(self) -> str:
        return f"OptimizedModule(\n  (_orig_mod): {_indent(repr(self._orig_mod))}\n)"


def _pending_call(entry, sig):
    """The compiled forward's results as pending values (one autograd node over the traced
    program) instead of computed now: the backward program then computes the forward and
    the gradients together, as for eager code, instead of running the forward twice (once
    here, once inside the inlined gradient program)."""
    exprs = [to_expr(x) for x in sig.arrays] + entry.captures
    outs = apply_to(entry.fn, exprs)
    inputs = [x if isinstance(x, Tensor) else to_expr(x) for x in sig.arrays]
    node = record_call(entry.fn.name, entry.fn, inputs + entry.capture_inputs(), outs)
    if fresh_results(entry.fn):
        _stop_key_at_outputs(node, entry.fn, [t._expr for t in outs])
    return tree_unflatten(entry.out_tree, outs)


def _write_back(buffers: dict, new_buffers: dict):
    """The buffers a training forward changed (BatchNorm's statistics), updated in place."""
    with no_grad():
        for name, value in new_buffers.items():
            buffers[name].copy_(value)


class _ForwardPlan:
    """How the last training call recorded the compiled forward, kept for the next calls.

    Valid while no module of the process changed its tables, attributes or modes
    (nn.module.GENERATION), for positional Tensor arguments of the same types, with the
    parameters and buffers still of the types traced. A call then skips the walk over the
    module tree, the signature and the entry lookup, and records the forward through a
    FunctionReplay (the same Ops and Exprs as apply_function, made without per-op lookups).
    """
    __slots__ = ("generation", "fixed", "params", "n_args", "types", "order", "entry",
                 "replay", "check_stale", "buffers", "write_back")

    @classmethod
    def build(cls, generation: int, mod, params: dict, buffers: dict, args: tuple, sig,
              entry) -> "_ForwardPlan | None":
        if len(sig.leaves) != len(sig.arrays) or not all(type(a) is Tensor for a in args):
            return None                      # a static leaf, or an argument not a Tensor
        fixed = list(params.values()) + list(buffers.values())
        where = {id(t): i for i, t in enumerate(fixed)}
        order, k = [], len(fixed)
        for leaf, owner in zip(sig.leaves, sig.owners):
            if owner == 2:                   # call = (params, buffers, args, kwargs)
                order.append(k)
                k += 1
            elif id(leaf) in where:
                order.append(where[id(leaf)])
            else:
                return None
        plan = cls()
        plan.generation, plan.fixed, plan.n_args = generation, fixed, len(args)
        plan.params = list(params.values())
        plan.types = [t._expr.type for t in fixed + list(args)]
        plan.order, plan.entry = order, entry
        plan.replay = FunctionReplay(entry.fn)
        plan.check_stale = any(t is not None for t in entry.owners)
        plan.buffers, plan.write_back = buffers, mod.training
        STATS["plans_built"] += 1
        return plan

    def _tensors(self, args: tuple) -> list | None:
        """The module's fixed Tensors and args, or None unless args are Tensors (not
        symbolic) of the traced types."""
        if len(args) != self.n_args:
            return None
        tensors = self.fixed + list(args)
        # NOTE: `is` first: a parameter's type is the optimizer program's result type, the
        # same object every step (TensorType's == is a Python call)
        for t, want in zip(tensors, self.types):
            if not isinstance(t, Tensor):
                return None
            e = t._expr
            if e.symbolic or (e.value.type is not want and e.value.type != want):
                return None
        return tensors

    def run_concrete(self, args: tuple):
        """Under no_grad: the program run on the arrays (pending ones realised first, as
        Entry.call does), or _MISS when the plan does not apply."""
        tensors = self._tensors(args)
        if tensors is None:
            return _MISS
        entry = self.entry
        if self.check_stale and entry.stale():
            return _MISS
        exprs = [tensors[i]._expr for i in self.order] + entry.captures
        arrays = [e.data for e in exprs]
        if any(a is None for a in arrays):
            if any(e.symbolic for e in exprs):
                return _MISS
            arrays = realize(exprs)     # pending values (a buffer's statistics update)
        STATS["plan_calls"] += 1
        out, new_buffers = tree_unflatten(entry.out_tree, wrap_results(entry.run(arrays),
                                                                       entry.fn))
        if self.write_back and new_buffers:
            _write_back(self.buffers, new_buffers)
        return out

    def run(self, args: tuple):
        """The forward's output recorded for args, or _MISS when the plan does not apply."""
        tensors = self._tensors(args)
        if tensors is None:
            return _MISS
        entry = self.entry
        if not any([p.requires_grad for p in self.params]) or \
                (self.check_stale and entry.stale()):
            return _MISS
        STATS["plan_calls"] += 1
        inputs = [tensors[i] for i in self.order]
        args = [t._expr for t in inputs] + entry.captures
        exprs = self.replay.pending(args) or self.replay(args)
        outs = [Tensor(e) for e in exprs]
        node = record_call(entry.fn.name, entry.fn, inputs + entry.capture_inputs(), outs)
        if self.replay.fresh_results:
            _stop_key_at_outputs(node, entry.fn, exprs)
        out, new_buffers = tree_unflatten(entry.out_tree, outs)
        if self.write_back and new_buffers:
            _write_back(self.buffers, new_buffers)
        return out


_MISS = object()


def _stop_key_at_outputs(node, fn, exprs: list):
    """Lets the backward's key stop at the node's outputs (tracer/autograd/node_walk.py):
    their interior is fn applied to the node's inputs, so the ~90 values of a transformer
    block are not walked every step. Only when the node's outputs are exactly the Exprs
    recorded for fn's results (each a float result of an op of fn, none an input's)."""
    if node is None:
        return
    outs = node.output_exprs
    if len(outs) == len(exprs) and all([x is y for x, y in zip(outs, exprs)]):
        node.template = (fn, outs, bounded.STATS["reads"])


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")
