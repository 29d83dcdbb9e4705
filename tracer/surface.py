"""The Tensor surface: every operator, method and property the class body of tracer/tensor.py
does not define, in one table, attached once by install() (called from tracer/__init__.py,
so `import tracer.tensor` alone gives the whole surface).

The class body holds a Tensor's own state: the autograd fields, static facts (shape, dtype)
and reading data. Everything here is implemented elsewhere and only named: the op
surface (tracer/ops/), the in-place methods (tracer/autograd/inplace.py), `new_*`
(tracer/creation.py), and the autograd methods that need the graph (backward,
register_hook, detach and .data: tracer/autograd/).

An operator given an operand it does not understand returns NotImplemented, so Python
tries the other side (and `x == None` is False, as in PyTorch). `__array_ufunc__ = None`
makes `ndarray + Tensor` call Tensor.__radd__ instead of NumPy converting the tensor to an
array.
"""
from __future__ import annotations

import collections
import numbers

import numpy as np

from tracer import creation, dtypes, norm, sparse, step_follow
from tracer import linalg as tl
from tracer.autograd import (engine, hooks, index_put_ops, inplace, quiet_sites, recording,
                             views)
from tracer.ops import compare, convert, getitem, indexing, linalg, reduce, rounding, shape
from tracer.ops import at
from tracer.ops.tensor_split import tensor_split
from tracer.ops import bitwise as bits
from tracer.ops import special as sp
from tracer.ops import special_math as spm
from tracer.ops import cumulative as cu
from tracer.ops import eager_only as eo
from tracer.ops import numpy_spellings as numpy_ops
from tracer.ops import quantiles as qu
from tracer.ops import sorting as so
from tracer.ops import structural as st
from tracer.ops import scatter_fill as sf
from tracer.ops import elementwise as ew
from tracer.ops import nn_functional as nnf
from tracer import tensor as tensor_module
from tracer.tensor import Tensor


def _operand_like(v) -> bool:
    t = type(v)
    if t is Tensor or t is float or t is int:      # (the common cases, before the ABC)
        return True
    return isinstance(v, (Tensor, numbers.Number, np.ndarray, np.generic))


def _operator(fn, reflected: bool = False):
    # a memoised op (record.torch_op) is first offered to the captured step being followed,
    # straight from here: one Python call less per followed operator (its wrapper's)
    body = getattr(fn, "memo_body", None)
    follow, miss, empty = step_follow.follow, step_follow.MISS, {}

    def method(self, other):
        t = type(other)                     # (_operand_like's common cases, inline)
        if t is not Tensor and t is not float and t is not int and not _operand_like(other):
            return NotImplemented
        if body is not None:
            args = (other, self) if reflected else (self, other)
            result = follow(body, args, empty)
            if result is not miss:
                return result
            result = quiet_sites.operator(fn, args)     # (a no-grad update's `lr * g`)
            if result is not None:
                return result
        return fn(other, self) if reflected else fn(self, other)
    method.__name__ = fn.__name__
    return method


OPERATORS = {
    "__add__": _operator(ew.add), "__radd__": _operator(ew.add, True),
    "__sub__": _operator(ew.sub), "__rsub__": _operator(ew.sub, True),
    "__mul__": _operator(ew.mul), "__rmul__": _operator(ew.mul, True),
    "__truediv__": _operator(ew.div), "__rtruediv__": _operator(ew.div, True),
    "__floordiv__": _operator(rounding.floor_divide),
    "__rfloordiv__": _operator(rounding.floor_divide, True),
    "__mod__": _operator(rounding.remainder), "__rmod__": _operator(rounding.remainder, True),
    "__pow__": _operator(ew.pow), "__rpow__": _operator(ew.pow, True),
    "__matmul__": _operator(linalg.matmul), "__rmatmul__": _operator(linalg.matmul, True),
    "__lt__": _operator(compare.lt), "__le__": _operator(compare.le),
    "__gt__": _operator(compare.gt), "__ge__": _operator(compare.ge),
    "__eq__": _operator(compare.eq), "__ne__": _operator(compare.ne),
    "__and__": _operator(bits.bitwise_and), "__rand__": _operator(bits.bitwise_and, True),
    "__or__": _operator(bits.bitwise_or), "__ror__": _operator(bits.bitwise_or, True),
    "__xor__": _operator(bits.bitwise_xor), "__rxor__": _operator(bits.bitwise_xor, True),
    "__lshift__": _operator(bits.bitwise_left_shift),
    "__rlshift__": _operator(bits.bitwise_left_shift, True),
    "__rshift__": _operator(bits.bitwise_right_shift),
    "__rrshift__": _operator(bits.bitwise_right_shift, True),
    "__neg__": ew.neg, "__pos__": ew.positive, "__abs__": ew.abs, "__invert__": bits.bitwise_not,
    "__getitem__": getitem.getitem, "__iter__": getitem.iterate,
}

METHODS = {
    # elementwise
    "add": ew.add, "sub": ew.sub, "subtract": ew.sub, "mul": ew.mul, "multiply": ew.mul,
    "div": ew.div, "divide": ew.div, "true_divide": ew.div, "neg": ew.neg,
    "negative": ew.neg, "pow": ew.pow, "square": ew.square, "exp": ew.exp, "log": ew.log,
    "log1p": ew.log1p, "expm1": ew.expm1, "sqrt": ew.sqrt, "rsqrt": ew.rsqrt, "abs": ew.abs,
    "absolute": ew.abs, "sign": ew.sign, "sin": ew.sin, "cos": ew.cos, "tan": ew.tan,
    "tanh": ew.tanh, "sigmoid": ew.sigmoid, "erf": ew.erf, "relu": ew.relu,
    "reciprocal": ew.reciprocal,
    "maximum": ew.maximum, "minimum": ew.minimum, "clamp": ew.clamp, "clip": ew.clamp,
    "clamp_min": ew.clamp_min, "clamp_max": ew.clamp_max, "masked_fill": ew.masked_fill,
    "where": lambda self, condition, other: ew.where(condition, self, other),
    # special functions (tracer/ops/special.py, special_math.py)
    **{name: getattr(sp, name) for name in (
        "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin", "arccos",
        "arctan", "arcsinh", "arccosh", "arctanh", "log2", "log10", "exp2", "erfc", "erfinv",
        "lgamma", "digamma", "atan2", "arctan2")},
    "polygamma": lambda self, n: sp.polygamma(n, self),
    **{name: getattr(spm, name) for name in (
        "logaddexp", "logaddexp2", "hypot", "lerp", "heaviside", "sinc", "xlogy", "logit",
        "nan_to_num", "isclose", "allclose")},
    # rounding
    "floor": rounding.floor, "ceil": rounding.ceil, "trunc": rounding.trunc,
    "fix": rounding.trunc, "round": rounding.round, "frac": rounding.frac,
    "floor_divide": rounding.floor_divide, "remainder": rounding.remainder,
    "fmod": rounding.fmod,
    # comparisons, logic, dtypes
    "eq": compare.eq, "ne": compare.ne, "lt": compare.lt, "le": compare.le, "gt": compare.gt,
    "ge": compare.ge, "equal": compare.equal, "logical_and": compare.logical_and,
    "logical_or": compare.logical_or, "logical_not": compare.logical_not,
    "logical_xor": compare.logical_xor, "isnan": compare.isnan, "isinf": compare.isinf,
    "isfinite": compare.isfinite, "bitwise_and": bits.bitwise_and,
    "bitwise_or": bits.bitwise_or, "bitwise_xor": bits.bitwise_xor,
    "bitwise_not": bits.bitwise_not, "bitwise_left_shift": bits.bitwise_left_shift,
    "bitwise_right_shift": bits.bitwise_right_shift, "to": convert.to, "type_as": convert.type_as,
    "type": convert.type_, "float": convert.caster("f32"), "double": convert.caster("f64"),
    "long": convert.caster("i64"), "int": convert.caster("i32"), "bool": convert.caster("bool"),
    "astype": numpy_ops.astype, "nelement": Tensor.numel,
    "half": lambda self, memory_format=None: convert.to(self, dtypes.float16),   # refused
    "bfloat16": lambda self, memory_format=None: convert.to(self, dtypes.bfloat16),
    # reductions
    "sum": reduce.sum, "mean": reduce.mean, "max": reduce.max, "min": reduce.min,
    "amax": reduce.amax, "amin": reduce.amin, "prod": reduce.prod, "var": reduce.var,
    "std": reduce.std, "logsumexp": reduce.logsumexp, "argmax": reduce.argmax,
    "argmin": reduce.argmin, "all": reduce.all, "any": reduce.any,
    # linear algebra
    "matmul": linalg.matmul, "mm": linalg.mm, "bmm": linalg.bmm, "mv": linalg.mv,
    "norm": norm.norm, "dot": numpy_ops.dot, "inner": linalg.inner, "outer": linalg.outer,
    "ger": linalg.outer, "det": tl.det, "inverse": tl.inv, "slogdet": tl.slogdet,
    # shape
    "reshape": shape.reshape, "view": shape.view, "flatten": shape.flatten,
    "ravel": shape.ravel, "unflatten": shape.unflatten, "transpose": numpy_ops.transpose,
    "swapaxes": shape.swapaxes, "swapdims": shape.transpose, "permute": shape.permute,
    "movedim": shape.movedim, "moveaxis": shape.movedim, "t": shape.t,
    "expand": shape.expand, "broadcast_to": shape.broadcast_to, "squeeze": shape.squeeze,
    "unsqueeze": shape.unsqueeze, "split": shape.split_method, "chunk": shape.chunk,
    "narrow": shape.narrow, "select": shape.select, "tensor_split": tensor_split,
    "unbind": shape.unbind,
    "view_as": lambda self, other: shape.view(self, tuple(other.shape)),
    "reshape_as": lambda self, other: shape.reshape(self, tuple(other.shape)),
    "expand_as": lambda self, other: shape.expand(self, tuple(other.shape)),
    # indexing
    "gather": indexing.gather, "take_along_dim": indexing.take_along_dim,
    "index_select": indexing.index_select, "index_add": indexing.index_add,
    "scatter_add": indexing.scatter_add, "scatter": sf.scatter, "index_fill": sf.index_fill,
    "unfold": sf.unfold,
    # structural (tracer/ops/structural.py); Tensor.repeat is PyTorch's (tiles)
    "tril": st.tril, "triu": st.triu, "diag": st.diag, "diagonal": st.diagonal,
    "trace": st.trace, "flip": st.flip, "fliplr": st.fliplr, "flipud": st.flipud,
    "roll": st.roll, "tile": st.tile, "repeat": st.tensor_repeat,
    "repeat_interleave": st.repeat_interleave,
    # cumulative (tracer/ops/cumulative.py)
    "cumsum": cu.cumsum, "cumprod": cu.cumprod, "cummax": cu.cummax, "cummin": cu.cummin,
    "logcumsumexp": cu.logcumsumexp,
    # sorting (tracer/ops/sorting.py, quantile.py)
    "sort": so.sort, "argsort": so.argsort, "msort": so.msort, "topk": so.topk,
    "kthvalue": so.kthvalue, "median": qu.median, "quantile": qu.quantile,
    "nanquantile": qu.nanquantile,
    # data-dependent shapes (tracer/ops/eager_only.py)
    "nonzero": eo.nonzero, "argwhere": eo.argwhere, "count_nonzero": eo.count_nonzero,
    "unique": eo.unique, "masked_select": eo.masked_select, "bincount": eo.bincount,
    # neural
    "softmax": nnf.softmax, "log_softmax": nnf.log_softmax,
    # layouts (tracer/sparse.py)
    "to_sparse": sparse.to_sparse, "to_dense": sparse.to_dense,
}


# called with no arguments after every Tensor.backward() (DistributedDataParallel's
# gradient all-reduce: tracer/distributed/ddp.py)
after_backward: list = []


def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Computes the gradient of this tensor w.r.t. graph leaves (see tracer/autograd)."""
    engine.backward([self], None if gradient is None else [gradient], retain_graph,
                    create_graph, inputs=inputs)
    for hook in after_backward:
        hook()


AUTOGRAD = {
    "backward": backward,
    "register_hook": hooks.register_tensor_hook,
    "detach": views.detach,
    "clone": inplace.clone,
    "__setitem__": inplace.setitem,
    "index_put_": index_put_ops.index_put_, "index_put": index_put_ops.index_put,
    **inplace.METHODS,
    **{dunder: inplace.METHODS[name] for dunder, name in inplace.OPERATORS.items()},
}

NEW = {           # t.new_zeros(size) and friends: t's dtype unless one is given
    "new_zeros": creation.new_factory(creation.zeros),
    "new_ones": creation.new_factory(creation.ones),
    "new_empty": creation.new_factory(creation.empty),
    "new_full": creation.new_full,
    "new_tensor": creation.new_tensor,
}

PROPERTIES = {
    "T": property(shape.full_transpose),
    "mT": property(shape.matrix_transpose),
    "at": property(at.at),
    "data": property(views.detach, views.set_data),
    "layout": property(sparse.dense_layout),
    "real": property(sf.real), "imag": property(sf.imag),
}

TABLES = (OPERATORS, METHODS, AUTOGRAD, NEW, PROPERTIES)
_installed = False


def install():
    """Attaches the tables to Tensor and autograd's recording hook to tracer.record: once."""
    global _installed
    if _installed:
        return
    names = collections.Counter(list(vars(Tensor)) + [n for table in TABLES for n in table])
    twice = sorted(n for n, count in names.items() if count > 1)
    if twice:              # one definition per name: a later table would silently win
        raise RuntimeError(f"Tensor attributes defined twice: {twice}")
    for table in TABLES:
        for name, attr in table.items():
            setattr(Tensor, name, attr)
    Tensor.__array_ufunc__ = None
    tensor_module.share_storage.append(views.share)
    recording.install()
    _installed = True
