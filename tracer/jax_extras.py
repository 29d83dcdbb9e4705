"""JAX's smaller transforms and utilities: eval_shape, ShapeDtypeStruct, linearize,
block_until_ready, and jit's static_argnames (turned into static argument positions).

    gj.eval_shape(f, x)          # ShapeDtypeStruct leaves, from a trace: nothing is compiled
    y, f_jvp = gj.linearize(f, x)
    f_jvp(t)                     # the JVP of f at x along t
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from tracer.dtypes import DType
from tracer.ops.operands import user_error
from tracer.pytree import tree_flatten, tree_map, tree_unflatten
from tracer.staging import Staged, float_scalars_to_arrays, fun_name, signature, trace
from tracer.transforms import jvp_body
from tracer.tracing import traced

__all__ = ["ShapeDtypeStruct", "eval_shape", "linearize", "block_until_ready"]


@dataclass(frozen=True)
class ShapeDtypeStruct:
    """An array's shape and dtype without its data (jax.ShapeDtypeStruct)."""
    shape: tuple
    dtype: np.dtype

    def __init__(self, shape, dtype):
        object.__setattr__(self, "shape", tuple(int(d) for d in shape))
        object.__setattr__(self, "dtype", np.dtype(dtype.numpy if isinstance(dtype, DType)
                                                   else dtype))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name})"


def _placeholder(x):
    """A ShapeDtypeStruct argument as a zero-strided array of its type (never read)."""
    if isinstance(x, ShapeDtypeStruct):
        return np.broadcast_to(np.zeros((), x.dtype), x.shape)
    return x


def eval_shape(fun, *args, **kwargs):
    """The shapes and dtypes of fun(*args, **kwargs), as a pytree of ShapeDtypeStruct: fun is
    traced (arguments may be arrays or ShapeDtypeStructs), nothing is compiled or run."""
    args = tree_map(_placeholder, args, is_leaf=lambda x: isinstance(x, ShapeDtypeStruct))
    kwargs = tree_map(_placeholder, kwargs, is_leaf=lambda x: isinstance(x, ShapeDtypeStruct))
    tr = trace(traced(fun), fun_name(fun), signature(args, kwargs))
    structs = [ShapeDtypeStruct(r.type.shape, r.type.np_dtype) for r in tr.fn.results]
    return tree_unflatten(tr.out_tree, structs)


def linearize(fun, *primals):
    """(fun(*primals), f_jvp) where f_jvp(*tangents) is the JVP of fun at primals (one
    tangent per primal), as jax.linearize. f_jvp is a compiled forward-mode program (it
    evaluates the primal too, where JAX keeps the linearised one)."""
    primals = tuple(float_scalars_to_arrays(p) for p in primals)
    name = fun_name(fun)
    out = Staged(traced(fun), fun, name)(*primals)
    forward = Staged(jvp_body(fun, name, len(primals)), fun, f"{name}_linearize")
    shapes = tree_flatten(primals)[1]

    def f_jvp(*tangents):
        tangents = tuple(float_scalars_to_arrays(t) for t in tangents)
        if tree_flatten(tangents)[1] != shapes:
            raise user_error(TypeError, f"linearize: f_jvp expects tangents of structure "
                                        f"{shapes}, got {tree_flatten(tangents)[1]}")
        return forward(*primals, *tangents)[1]
    return out, f_jvp


def block_until_ready(x):
    """x itself: gradjit's calls return when their results are computed (jax's no-op)."""
    return x


def static_positions(fun, static_argnums, static_argnames):
    """(static_argnums with the positions of static_argnames added, a prepare hook that
    passes those arguments positionally), from fun's signature."""
    names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if not names:
        return nums, None
    params = list(inspect.signature(fun).parameters.values())
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for n in names:
        if n not in positional:
            raise user_error(ValueError, f"jit: static_argnames {n!r} is not a positional "
                                         f"parameter of {fun_name(fun)}{tuple(positional)}")
    nums = tuple(sorted(set(nums) | {positional.index(n) for n in names}))

    def prepare(args, kwargs):
        bound = inspect.signature(fun).bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.args), dict(bound.kwargs)
    return nums, prepare
