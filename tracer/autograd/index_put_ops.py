"""Tensor.index_put_ / Tensor.index_put / torch.index_put: `x[indices] = values` spelled as
a call, and with accumulate=True the sum of x and every value written at a position
(repeated positions add up, as PyTorch's accumulate does). Both are one IndexPutBackward0
node: the gradient of x passes where nothing was written (everywhere with accumulate), and
every value, a repeated position's too, gets the gradient of the element it went to."""
from __future__ import annotations

from tracer.autograd import index_put as put_rules
from tracer.autograd import views
from tracer.autograd.inplace import inplace
from tracer.ops.getitem import check_empty_key
from tracer.ops.operands import user_error
from tracer.ops.write_last import scatter_base
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array

__all__ = ["index_put"]


@torch_op("IndexPut")
def _put(x, key, value):
    if put_rules.is_traced_key(key):
        return put_rules.put_traced(x, key, value)
    return put_rules.put_concrete(x, key, value)


@torch_op("IndexPut")
def _put_accumulate(x, key, value):
    t = x._expr.type
    if t.size == 0:
        check_empty_key(x, key)
        return apply("reshape", x, shape=t.shape)
    if put_rules.is_traced_key(key):
        iota = apply("iota", dtype="i64", shape=(t.size,), dim=0)
        positions = apply("reshape", iota, shape=tuple(t.shape))[key]
    else:
        positions = tensor_from_array(put_rules.concrete_positions(x, key))
    m = positions.numel()
    flat = apply("reshape", positions, shape=(m,))
    v = apply("reshape", put_rules.value_at(value, t.dtype, tuple(positions.shape)), shape=(m,))
    # scattered onto -0.0 (adds nothing, -0.0 included), then added: unwritten elements
    # keep their bits, written ones get x + (the sum of their values)
    added = apply("scatter_add", scatter_base(t.dtype, t.size), flat, v, axis=0)
    if t.dtype == "bool":
        out = apply("logical_or", apply("reshape", x, shape=(t.size,)), added)
    else:
        out = apply("add", apply("reshape", x, shape=(t.size,)), added)
    return apply("reshape", out, shape=tuple(t.shape))


# what views.check_inplace lets write to an expand and reads as a key (inplace.py's marks)
_put.index_put = _put_accumulate.index_put = True


def _key(indices) -> tuple:
    """PyTorch's check of index_put's indices: a tuple (or list) of Tensors."""
    if isinstance(indices, Tensor) or not isinstance(indices, (tuple, list)):
        raise user_error(TypeError, "index_put(): argument 'indices' (position 1) must be tuple "
                                    f"of Tensors, not {type(indices).__name__}")
    for i, k in enumerate(indices):
        if not isinstance(k, Tensor):
            raise user_error(TypeError, f"expected Tensor as element {i} in argument 0, but got "
                                        f"{type(k).__name__}")
    return tuple(indices)


def _checked(self, indices, values) -> tuple:
    key = _key(indices)
    if not isinstance(values, Tensor):
        raise user_error(TypeError, "index_put(): argument 'values' (position 2) must be "
                                    f"Tensor, not {type(values).__name__}")
    if values._expr.type.dtype != self._expr.type.dtype and not (
            self._expr.symbolic or values._expr.symbolic):
        put_rules.check_dtypes(self, key, values)
    return key


def index_put_(self, indices, values, accumulate=False):
    """self[indices] = values in place (accumulate: self[indices] += values, repeated
    positions adding up); returns self."""
    key = _checked(self, indices, values)
    if values is self and self._storage.members is None:
        views.check_inplace(self, _put, (key, values))       # PyTorch refuses the overlap
    return inplace(self, _put_accumulate if accumulate else _put, key, values)


def index_put(input, indices, values, accumulate=False):
    """A copy of input with input[indices] = values (accumulate: += values)."""
    key = _checked(input, indices, values)
    return (_put_accumulate if accumulate else _put)(input, key, values)
