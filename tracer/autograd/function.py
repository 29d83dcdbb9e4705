"""autograd.Function: custom ops with a user-written backward, compiled like everything else.

    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    y = Square.apply(x)          # grad_fn: <SquareBackward>

`forward` runs under no_grad (its ops are recorded lazily but get no nodes of their own);
`apply` then attaches one `CustomNode`. At backward time the engine calls the user's
`backward` with *symbolic* Tensors standing for the output gradients (and the real saved
tensors), cuts what it returns into a Function and inlines it into the backward program
(engine.py). So the backward is compiled together with the rest of the reverse pass, and
it must not read the gradients' data (TracerError names the line if it tries).
"""
from __future__ import annotations

import weakref

from tracer.autograd.custom_grad import fit_expr
from tracer.autograd.grad_mode import is_grad_enabled, no_grad
from tracer.autograd.nodes import SECOND_BACKWARD, Node, SavedTensor, edge_of, node_class
from tracer.creation import tensor
from tracer.custom_call import record_custom_vjp
from tracer.errors import user_location
from tracer.expr import apply_op, build_function, param_expr
from runtime.compile_cache import compact_key
from tracer.tensor import Tensor

FLOAT = ("f32", "f64")


class FunctionCtx:
    """The `ctx` of forward/backward: saved tensors and flags, plus any attributes set."""

    def __init__(self):
        self.needs_input_grad: tuple = ()
        self.materialize_grads = True
        self._to_save: tuple = ()
        self._saved_exprs: list = []
        self._non_differentiable: set = set()
        self._node = None                  # weakref to the CustomNode, once attached

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{len(self._to_save)} is of type {type(t).__name__}")
        self._to_save = tensors
        self._saved_exprs = [t._expr if t is not None else None for t in tensors]

    def save_for_forward(self, *tensors):
        self._for_forward = tensors

    @property
    def saved_tensors(self) -> tuple:
        node = self._node() if self._node is not None else None
        if node is not None and node.freed and node.has_saved():
            raise RuntimeError(SECOND_BACKWARD)
        return tuple(Tensor(e) if e is not None else None for e in self._saved_exprs)

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors):
        """Accepted for compatibility: gradjit's in-place results are new values anyway."""

    def set_materialize_grads(self, value: bool):
        self.materialize_grads = bool(value)


class CustomNode(Node):
    """The grad_fn of Function.apply: its backward is the user's, traced at backward time."""
    fn_cls: type = None

    def __init__(self, inputs, outputs, loc, ctx: FunctionCtx, tensor_positions, nargs):
        super().__init__(inputs, outputs, loc)
        self.ctx = ctx
        self.tensor_positions = tensor_positions      # arg index of each tensor input
        self.nargs = nargs

    def emit_vjp(self, em, out_cts, wanted):
        ctx = self.ctx
        trace, self._trace = self._trace, None
        if trace is not None and trace[0]() is em and ctx.materialize_grads:
            params, grads = trace[1:]           # replay_key's run, for this backward
        else:
            params, grads = self._run_backward([g is not None for g in out_cts])
        bound = [g if g is not None else em.zeros(e.type)
                 for e, g in zip(self.output_exprs, out_cts)
                 if e is not None and (g is not None or ctx.materialize_grads)]
        exprs = [(i, g._expr) for i, g in enumerate(grads) if g is not None and wanted[i]]
        if not exprs:
            return [None] * len(self.edges)
        fn, captures = build_function(self.name(), params, [e for _, e in exprs])
        values = em.b.inline(fn, bound + [em.value(c) for c in captures])
        out = [None] * len(self.edges)
        for (i, _), v in zip(exprs, values):
            out[i] = self._fit(em, v, i)
        return out

    # (weakref to the backward's Emitter, params, gradients): replay_key's run of the
    # user's backward; emit_vjp takes it only for that backward (a run left over by a
    # backward that skipped the node is never taken by a later one)
    _trace = None

    def _run_backward(self, given: list) -> tuple:
        """Runs the user's backward on symbolic gradients (an output without one, given
        False, gets None when ctx.materialize_grads is off): (params, per-input grads)."""
        ctx = self.ctx
        params, grads_in = [], []
        for e, g in zip(self.output_exprs, given):
            if e is None or (not g and not ctx.materialize_grads):
                grads_in.append(None)
                continue
            p = param_expr(e.type, "grad")
            params.append(p)
            grads_in.append(Tensor(p))
        with no_grad():
            result = self.fn_cls.backward(ctx, *grads_in)
        return params, self._per_input(result)

    def replay_key(self, em) -> tuple | None:
        """For the backward replay (replay.py): runs the user's backward now, once for this
        backward() (em: its Emitter; emit_vjp takes the run if the program is emitted),
        and returns (the structure of what it computes from the gradients, the values it
        captures). Equal structures over the same captured positions emit the same
        program; the user's code still runs every backward, as PyTorch's (prints,
        counters). None: not keyed (a backward whose gradients' presence changes what it
        is given)."""
        if not self.ctx.materialize_grads:
            return None
        params, grads = self._run_backward([True] * len(self.output_exprs))
        self._trace = (weakref.ref(em), params, grads)
        outs = [g._expr for g in grads if g is not None]
        fn, captures = build_function(self.name(), params, outs)
        present = tuple(g is not None for g in grads)
        return (self.fn_cls, present, compact_key(fn)), captures

    def drop_trace(self):
        """The replayed program was run: the user's backward, run by replay_key, is done."""
        self._trace = None

    def _per_input(self, result) -> list:
        return per_input(result, self.nargs, self.tensor_positions, self.name())

    def _fit(self, em, v, i):
        """Checks a returned gradient's shape against the input's (summing broadcasts)."""
        want = self.input_exprs[i].type
        if v.type.shape != want.shape:
            if not _broadcastable(want.shape, v.type.shape):
                raise RuntimeError(
                    f"Function {self.name()} returned an invalid gradient at index {i} - got "
                    f"{list(v.type.shape)} but expected shape compatible with "
                    f"{list(want.shape)}")
            v = em.b.sum_to(v, want.shape)
        if v.type.dtype != want.dtype:
            v = em.b.convert(v, dtype=want.dtype)
        return v


def per_input(result, nargs: int, positions, name: str) -> list:
    """The backward's results for the tensor inputs (it returns one per forward arg)."""
    result = result if isinstance(result, tuple) else (result,)
    if len(result) > nargs and all(r is None for r in result[nargs:]):
        result = result[:nargs]
    if len(result) != nargs:
        raise RuntimeError(f"function {name} returned an incorrect number of "
                           f"gradients (expected {nargs}, got {len(result)})")
    grads = []
    for pos in positions:
        g = result[pos]
        if g is not None and not isinstance(g, Tensor):
            g = tensor(g)
        grads.append(g)
    return grads


def _broadcastable(shape, grad_shape) -> bool:
    """shape can be broadcast to grad_shape (so grad sums back down to it)."""
    if len(shape) > len(grad_shape):
        return False
    tail = grad_shape[len(grad_shape) - len(shape):]
    return all(a == b or a == 1 for a, b in zip(shape, tail))


class Function:
    """Base class of custom autograd ops (PyTorch's torch.autograd.Function)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward "
                                  "mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            if _overrides(cls, "setup_context"):
                out = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        if is_grad_enabled() and any(ctx.needs_input_grad):
            out = _attach(cls, ctx, args, out)
        elif is_grad_enabled():
            out = _under_transforms(cls, ctx, args, out)
        return out


def _overrides(cls, name: str) -> bool:
    return getattr(cls, name) is not getattr(Function, name)


def _fresh(t: Tensor, tensors: list) -> Tensor:
    """An input returned by forward as is becomes a new Tensor with a value of its own
    (PyTorch returns a view), so the node never rewires the caller's input."""
    if any(t is a for a in tensors):
        t = Tensor(t._expr)
    if any(t._expr is a._expr for a in tensors):
        t._expr = apply_op("reshape", (t._expr,), None, shape=t._expr.type.shape)[0]
    return t


def _attach(cls, ctx: FunctionCtx, args, out):
    """Attaches the CustomNode to forward's floating outputs; returns the outputs."""
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    tensors = [args[i] for i in positions]
    single = not isinstance(out, (tuple, list))
    outs = [out] if single else list(out)
    node_cls = node_class(f"{cls.__name__}Backward", CustomNode)
    node_cls.fn_cls = cls
    outputs = _float_outputs(ctx, outs, tensors)
    if not any(t is not None for t in outputs):
        return out
    node = node_cls([(a._expr, edge_of(a)) for a in tensors],
                    [t._expr if t is not None else None for t in outputs], user_location(),
                    ctx, positions, len(args))
    ctx._node = weakref.ref(node)          # the node owns ctx: no cycle
    for nr, t in enumerate(outputs):
        if t is not None:
            t._grad_fn = node
            t._output_nr = nr
    nr_of = {id(t): nr for nr, t in enumerate(outputs) if t is not None}
    node.saved = [SavedTensor(t, node, nr_of.get(id(t))) for t in ctx._to_save
                  if t is not None]
    return outs[0] if single else type(out)(outs)


def _float_outputs(ctx, outs, tensors) -> list:
    """forward's outputs that get a gradient (float, not marked non-differentiable), made
    fresh Tensors; None for the others. Replaces them in outs."""
    outputs = []
    for k, t in enumerate(outs):
        ok = isinstance(t, Tensor) and t._expr.type.dtype in FLOAT \
            and id(t) not in ctx._non_differentiable
        if ok:
            t = outs[k] = _fresh(t, tensors)
        outputs.append(t if ok else None)
    return outputs


def _under_transforms(cls, ctx, args, out):
    """Inside a functional trace (grad, vjp, jacobian, jvp, vmap): the outputs become those of
    one custom_vjp_call op whose body is the forward and whose rule is cls.backward
    (tracer/custom_call.py), so every transform uses the user's backward."""
    positions = [i for i, a in enumerate(args)
                 if isinstance(a, Tensor) and a._expr.type.dtype in FLOAT]
    tensors = [args[i] for i in positions]
    if not tensors or not any(t._expr.symbolic for t in tensors):
        return out
    single = not isinstance(out, (tuple, list))
    outs = [out] if single else list(out)
    outputs = _float_outputs(ctx, outs, tensors)
    live = [t for t in outputs if t is not None]
    if not live:
        return out
    ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._expr.type.dtype in FLOAT
                                 for a in args)
    name = f"{cls.__name__}Backward"
    params = [t._expr for t in tensors]
    saved = [e for e in ctx._saved_exprs if e is not None]
    res_params = [param_expr(e.type, "saved") for e in saved]
    g_params = [param_expr(t._expr.type, "grad") for t in live]
    swap = iter(res_params)
    original, ctx._saved_exprs = ctx._saved_exprs, [
        None if e is None else next(swap) for e in ctx._saved_exprs]
    grads_in, it = [], iter(g_params)
    for t in outputs:
        grads_in.append(Tensor(next(it)) if t is not None else None)
    try:
        with no_grad():
            result = cls.backward(ctx, *grads_in)
    finally:
        ctx._saved_exprs = original
    grads = per_input(result, len(args), positions, name)
    cts = [None if g is None else fit_expr(g._expr, t._expr.type, name, i)
           for i, (g, t) in enumerate(zip(grads, tensors))]
    outs_e = [t._expr for t in live]
    new = iter(record_custom_vjp(cls.__name__, params, params, outs_e, outs_e, saved,
                                 res_params, g_params, cts))
    for k, t in enumerate(outputs):
        if t is not None:
            outs[k] = next(new)
    return outs[0] if single else type(out)(outs)


def once_differentiable(backward):
    """PyTorch's marker for a backward that is not itself differentiable. gradjit traces a
    backward like any other code (its result can be differentiated again), so the marker
    changes nothing: code written for PyTorch runs unchanged."""
    return backward
