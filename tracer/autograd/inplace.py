"""In-place Tensor methods (`add_`, `+=`, `zero_`, `copy_`, `x[i] = v`, ...) and versions.

Exprs are immutable, so an in-place op computes the new value out of place (through the op
surface, so it is recorded and gets PyTorch's node, e.g. `AddBackward0` for `y += 1`) and
points the Tensor (and its detached aliases) at it, bumping the shared version counter.
Autograd then behaves as PyTorch's does:

  - on a leaf that requires grad, with grad mode on: PyTorch's RuntimeError;
  - under no_grad (`p -= lr * p.grad`): the value changes, nothing is recorded, a leaf
    stays a leaf;
  - otherwise the tensor's grad_fn becomes the op's node; a node that saved the tensor's
    old value (see recording.py) fails at backward with PyTorch's "modified by an inplace
    operation" error, because the versions no longer match.

The op itself sees the old value through a stand-in Tensor with a storage of its own, so
what the new node saved of its input is a snapshot (as PyTorch's in-place ops save
copies), while what it saved of its output follows the tensor from now on.
A tensor's views and aliases (x[0], x.t(), x.detach(), ...) share its version counter
and see its in-place changes, and it sees theirs (views.py).
"""
from __future__ import annotations

import inspect
import sys

import tracer.ops as ops
from tracer import op_memo, op_sites, step_capture, step_follow
from tracer.captures import active as captures_active
from tracer.autograd import direct_write, index_put, views
from tracer.autograd.grad_mode import is_grad_enabled
from tracer.creation import generator
from tracer.ops.operands import broadcast, cast, to_tensor, user_error, written_as
from tracer.record import _state as record_state
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, note_inplace, tensor_from_array

_new = object.__new__
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
_TYPE_NAMES = {"f32": "Float", "f64": "Double", "i32": "Int", "i64": "Long", "bool": "Bool"}


def inplace(t: Tensor, compute, *args, **kwargs) -> Tensor:
    """t <- compute(t, *args, **kwargs), recorded as PyTorch records an in-place op."""
    grad = is_grad_enabled()
    if grad and t._grad_fn is None and t._requires_grad:
        raise RuntimeError(LEAF_INPLACE)
    shared = t._storage.members is not None
    if shared:
        written = views.check_inplace(t, compute, args, kwargs)
    elif not t._expr.type.size:
        views.write_empty_view(t, grad)
    src = _new(Tensor)                     # Tensor(t._expr) without its __init__'s tests
    src._expr = t._expr
    if t._grad_fn is not None:             # (the class defaults otherwise: no stores)
        src._grad_fn, src._output_nr = t._grad_fn, t._output_nr
    out = compute(src, *args, **kwargs)
    got, want = out._expr.value.type, t._expr.value.type
    if got is not want and got != want:
        _check_result(t, out)
    t._expr = out._expr
    t._storage.version += 1
    if grad and is_grad_enabled():         # (compute may not change the mode: checked)
        _adopt_node(t, out)
    if t._grad_fn is None:
        note_inplace(t)
    if shared:
        views.propagate(t, written)
    if t._storage.host is not None:       # an ndarray shares the memory (Tensor.numpy)
        t._sync_host()
    return t


def _check_result(t: Tensor, out: Tensor):
    want, got = t._expr.type, out._expr.type
    if got.dtype != want.dtype:
        if (got.dtype in ("f32", "f64") and want.dtype not in ("f32", "f64")) or \
                want.dtype == "bool":          # (nor may a number be written to a bool)
            raise user_error(RuntimeError, f"result type {_TYPE_NAMES[got.dtype]} can't be cast "
                                           f"to the desired output type "
                                           f"{_TYPE_NAMES[want.dtype]}")
        out._expr = apply("convert", out, dtype=want.dtype)._expr
    if got.shape != want.shape:
        raise RuntimeError(f"output with shape {list(want.shape)} doesn't match the broadcast "
                           f"shape {list(got.shape)}")


def _adopt_node(t: Tensor, out: Tensor):
    """t becomes the output of out's node; saved references to out now follow t."""
    node = out._grad_fn
    old_node, old_nr = t._grad_fn, t._output_nr
    t._grad_fn, t._output_nr = node, out._output_nr
    if node is None:
        return
    node.output_exprs[out._output_nr] = t._expr
    t._expr.recorded = True
    for s in node.saved:
        if s.storage is out._storage:
            s.retarget(t)
    if t._retains_grad and old_node is not None:
        old_node.retained.pop(old_nr, None)
        t._retains_grad = False
        t.retain_grad()


# ---- the recorded in-place computations -------------------------------------------------

@torch_op("Zero")
def _zeros(x):
    t = x._expr.type
    return apply("constant", value=0 if t.dtype != "bool" else False, dtype=t.dtype,
                 shape=t.shape)


def _new_value(v: Tensor, shape) -> Tensor:
    """v broadcast to shape, always as a new Tensor (never the argument object itself, so
    the op's node is attached to the result, not to the caller's tensor)."""
    out = broadcast(v, shape)
    return apply("reshape", out, shape=tuple(shape)) if out is v else out


def _fill_value(x, value):
    v = written_as(value, x._expr.type.dtype)
    if v.ndim != 0:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor "
                           f"with {v.ndim} dimensions.")
    return _new_value(v, x.shape)


_fill_scalar = torch_op("FillBackward2")(_fill_value)
_fill_tensor = torch_op("FillBackward3")(_fill_value)


@torch_op("CopyBackwards")
def _copy(x, src):
    return _new_value(cast(to_tensor(src), x._expr.type.dtype), x.shape)


def _sampler(name: str, draw):
    """An in-place sampler (nn.init's uniform_, normal_): a fresh random value of x's shape,
    drawn from gradjit's generator (tracer.creation.manual_seed)."""
    @torch_op(name)
    def sample(x, a, b):
        t = x._expr.type
        return tensor_from_array(draw(generator(), a, b, t.shape), t.dtype)
    return sample


_uniform = _sampler("UniformBackward0", lambda g, a, b, shape: g.uniform(a, b, shape))
_normal = _sampler("NormalBackward0", lambda g, mean, std, shape: g.normal(mean, std, shape))


# ---- x[key] = value ----------------------------------------------------------------------

@torch_op("CopySlices")
def _index_put(x, key, value):
    """x with x[key] replaced by value (tracer/autograd/index_put.py)."""
    if index_put.is_traced_key(key):
        return index_put.put_traced(x, key, value)
    return index_put.put_concrete(x, key, value)


# ---- the methods ---------------------------------------------------------------------------

def _method(name: str, compute):
    def method(self, *args, **kwargs):
        return inplace(self, compute, *args, **kwargs)
    if getattr(_FOLLOWED.get(name), "memo_body", None) is not None:   # (memoised ops only)
        method = _followed_method(_FOLLOWED[name], compute)
    elif name in _DIRECT:
        method = _direct_method(_DIRECT[name], compute)
    method.__name__ = name
    method.__doc__ = f"In-place {name[:-1]} (see tracer/autograd/inplace.py)."
    method.__signature__ = inspect.signature(compute)     # PyTorch's keyword names

    return method


def _followed_method(op, compute):
    """add_/sub_ (`w -= lr * g`): a call with one argument on a tensor that needs no grad,
    shares no storage and no NumPy memory is first offered to the captured step being
    followed (step_follow.follow, from here: one Python call past the user's, as Tensor's
    operators do), with what inplace() then does for such a tensor; a call the step does not
    follow is offered to _direct (a parameter's update under no_grad); any other call is
    inplace()'s (the same value, version and bookkeeping)."""
    body, follow, miss, empty = op.memo_body, step_follow.follow, step_follow.MISS, {}

    def method(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and self._grad_fn is None:
            st = self.__dict__.get("_storage")
            if not self._requires_grad and (st is None or st.host is None and (
                    st.members is None or _root_alone(self, st))):
                # self, not inplace()'s stand-in (one Tensor less): a followed call only
                # checks its first argument (type, grad, Expr) and keeps its Expr; a
                # result that is an argument (`w -= 0`) then is self, whose Expr is the
                # stand-in's, so the tail below does the same
                out = follow(body, (self, args[0]), empty)
                if out is not miss:
                    _followed_tail(self, out)
                    if st is not None and st.members is not None:
                        views.propagate(self)      # (inplace()'s last step: shared storage)
                        STATS["followed_roots"] += 1
                    return self
            out = _direct(self, op, args)          # (a parameter's update: not followed)
            if out is not None:
                return out
        return inplace(self, compute, *args, **kwargs)
    return method


def _root_alone(t: Tensor, st) -> bool:
    """Whether t is the root of its storage and its only live member: its views all died
    (two_layer_net_tensor.py's `w2 -= ...` after the step's `w2.t()`). Then inplace()'s
    view steps reduce to views.propagate moving the root value (check_inplace has nothing
    to check on a root), which the followed update runs after its tail."""
    return t._member is None and len(st.members) == 1


def _direct_method(op_and_arity: tuple, compute):
    """An in-place method whose computation is one memoised op on (the tensor, *args) when
    called with `arity` positional arguments: _direct first, else inplace()."""
    op, arity = op_and_arity

    def method(self, *args, **kwargs):
        if len(args) == arity and not kwargs and self._grad_fn is None:
            out = _direct(self, op, args)
            if out is not None:
                return out
        return inplace(self, compute, *args, **kwargs)
    return method


# in-place updates taken by _direct (the tests read it); DIRECT off: every such call takes
# inplace() (tests compare the two)
STATS = {"direct": 0, "followed_puts": 0, "followed_roots": 0}
DIRECT = True


def _direct(t: Tensor, op, args: tuple) -> Tensor | None:
    """t <- op(t, *args) as inplace() computes it, for a call whose general path is known:
    t has no grad_fn, no views and no NumPy memory; no Tensor operand requires grad; t
    itself requires grad only under no_grad (a parameter's `w -= lr * w.grad` and its
    `w.grad.zero_()` after backward). Then the op's wrapper (record.torch_op) would replay
    the op's Template without hooks (no operand requires grad: `_quiet`), and step capture
    would do nothing: its cycle is spoiled (the step's forward recorded autograd nodes) or
    capture is off. So the same Template is replayed here on the same operands, at the same
    user line, without the wrapper's layers. None (nothing done) for any other call: it
    takes inplace(), which gives the same value, version and bookkeeping."""
    if not DIRECT or t._requires_grad and is_grad_enabled():
        return None                        # (inplace() raises PyTorch's leaf error)
    st = t.__dict__.get("_storage")
    if st is not None and (st.members is not None or st.host is not None):
        return None
    for a in args:
        if isinstance(a, Tensor) and (a._requires_grad or a._grad_fn is not None):
            return None                    # recorded: the autograd hook's business
    if record_state.depth or captures_active():
        return None
    if step_capture.ENABLED:
        s = step_follow.tls.s
        if s is None or s.events is None or s.clean:
            return None                    # a tape followed, or a cycle still learnable
    if op.torch_name in op_memo.GUARDS:
        return None                        # guarded: the general path
    src = _new(Tensor)                     # inplace()'s stand-in, as there
    src._expr = t._expr
    # the key's Template and the user's line, by call site (the method's frame)
    found = op_sites.find(op.memo_body, (src, *args), sys._getframe(1))
    if found is None:
        return None                        # not learnt, refused: the general path
    template, tensors, loc = found
    op_memo.STATS["replays"] += 1
    out = template.replay(tensors, loc)
    STATS["direct"] += 1
    return _followed_tail(t, out)


def _followed_tail(t: Tensor, out: Tensor) -> Tensor:
    """inplace()'s steps after its computation, for a tensor without grad_fn, views or
    NumPy memory (_followed_method) and a result without a node."""
    got, want = out._expr.value.type, t._expr.value.type
    if got is not want and got != want:
        _check_result(t, out)
    t._expr = out._expr
    t._storage.version += 1
    if t._output_nr != out._output_nr and is_grad_enabled():
        _adopt_node(t, out)                    # (else it would change nothing)
    note_inplace(t)
    return t


def _unary(op_name: str):
    return lambda x: getattr(ops, op_name)(x)


def _fill(x, value):
    return (_fill_tensor if isinstance(value, Tensor) else _fill_scalar)(x, value)


def _addcmul(x, tensor1, tensor2, value=1):
    return ops.add(x, ops.mul(tensor1, tensor2), alpha=value)


def _addcdiv(x, tensor1, tensor2, value=1):
    return ops.add(x, ops.div(tensor1, tensor2), alpha=value)


def _lerp(x, end, weight):
    return ops.add(x, ops.mul(ops.sub(end, x), weight))


def _with_alpha(op):
    """add_/sub_: the default alpha is not passed on, so `w -= lr * g` calls sub(w, g) (no
    keyword to bind, a shorter op-memo key: one in-place update ~1.5 us less)."""
    def compute(x, other, alpha=1):
        if type(alpha) is int and alpha == 1:
            return op(x, other)
        return op(x, other, alpha=alpha)
    return compute


# what views.check_inplace lets write to an expand (PyTorch does): a fill, a basic-index part
_zeros.fills_all = _fill.fills_all = _index_put.index_put = True


# the in-place methods a followed step's call may take straight (_followed_method): their op
_FOLLOWED = {"add_": ops.add, "sub_": ops.sub}
# the in-place methods whose computation is one memoised op on (tensor, *args) when called
# without keywords (_direct): their op
# (and how many positional arguments: add_'s positional alpha, say, goes to inplace())
_DIRECT = {"mul_": (ops.mul, 1), "div_": (ops.div, 1), "zero_": (_zeros, 0)}

_COMPUTE = {
    "add_": _with_alpha(ops.add),
    "sub_": _with_alpha(ops.sub),
    "mul_": lambda x, other: ops.mul(x, other),
    "div_": lambda x, other, rounding_mode=None: ops.div(x, other) if rounding_mode is None
    else ops.div(x, other, rounding_mode=rounding_mode),
    "pow_": lambda x, exponent: ops.pow(x, exponent),
    "clamp_": lambda x, min=None, max=None: ops.clamp(x, min, max),
    "clamp_min_": lambda x, min: ops.clamp(x, min, None),
    "clamp_max_": lambda x, max: ops.clamp(x, None, max),
    "masked_fill_": lambda x, mask, value: ops.masked_fill(x, mask, value),
    "index_fill_": lambda x, dim, index, value: ops.index_fill(x, dim, index, value),
    "scatter_": lambda x, dim, index, src=None, value=None, *, reduce=None: ops.scatter(
        x, dim, index, src, value, reduce=reduce),
    "addcmul_": _addcmul, "addcdiv_": _addcdiv, "lerp_": _lerp,
    "zero_": _zeros, "fill_": _fill,
    "copy_": lambda x, other, non_blocking=False: _copy(x, other),
    "uniform_": lambda x, a=0.0, to=1.0: _uniform(x, a, to),   # a: `from`, a Python keyword
    "normal_": lambda x, mean=0.0, std=1.0: _normal(x, mean, std),
}
for _name in ("neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "sin", "cos",
              "reciprocal", "square", "sign", "logical_not"):
    _COMPUTE[_name + "_"] = _unary(_name)
for _name in ("floor_divide", "remainder"):
    _COMPUTE[_name + "_"] = (lambda op: lambda x, other: op(x, other))(getattr(ops, _name))


def _bitwise_inplace(op):
    """`int_tensor &= 0.5`: PyTorch's cast error (RuntimeError) before the op's own."""
    def compute(x, other):
        got, want = ops.result_type(x, other), x._expr.type.dtype
        if got in ("f32", "f64") and want not in ("f32", "f64"):
            raise user_error(RuntimeError, f"result type {_TYPE_NAMES[got]} can't be cast to "
                                           f"the desired output type {_TYPE_NAMES[want]}")
        return op(x, other)
    return compute


for _name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    _COMPUTE[_name + "_"] = _bitwise_inplace(getattr(ops, _name))

# the Tensor methods (attached by tracer/surface.py)
METHODS = {name: _method(name, compute) for name, compute in _COMPUTE.items()}
OPERATORS = {"__iadd__": "add_", "__isub__": "sub_", "__imul__": "mul_",
             "__itruediv__": "div_", "__ifloordiv__": "floor_divide_", "__imod__": "remainder_",
             "__ipow__": "pow_", "__iand__": "bitwise_and_", "__ior__": "bitwise_or_",
             "__ixor__": "bitwise_xor_"}


@torch_op("Clone")
def clone(x, memory_format=None):
    """A copy of x with a storage (and version counter) of its own; CloneBackward0."""
    return apply("reshape", x, shape=x._expr.type.shape)


def setitem(self, key, value):
    """x[key] = value. On a tensor that needs no grad, shares no storage and no NumPy memory
    (two_layer_net_tensor.py's `grad_h[h < 0] = 0`), first offered to the captured step
    being followed, with what inplace() then does for such a tensor (_followed_method's
    reasoning: the same follow call inplace()'s compute would make, then its tail)."""
    index_put.check_dtypes(self, key, value)
    if direct_write.write(self, key, value):      # a number, no autograd: NumPy writes it
        return
    if value is self and self._storage.members is None:     # (inplace() checks shared ones)
        views.check_inplace(self, _index_put, (key, value))  # `x[idx] = x`: PyTorch refuses
    if self._grad_fn is None and not self._requires_grad and _PUT_BODY is not None:
        st = self.__dict__.get("_storage")
        if st is None or st.members is None and st.host is None:
            src = _new(Tensor)                 # inplace()'s stand-in, as there
            src._expr = self._expr
            out = step_follow.follow(_PUT_BODY, (src, key, value), _NO_KWARGS)
            if out is not step_follow.MISS:
                _followed_tail(self, out)
                STATS["followed_puts"] += 1
                return
    inplace(self, _index_put, key, value)


# the body of the memoised CopySlices op (setitem's followed call), and its empty kwargs
_PUT_BODY = getattr(_index_put, "memo_body", None)
_NO_KWARGS: dict = {}
