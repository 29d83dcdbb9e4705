"""The functional transforms (docs/api.md section 1): grad, jit, vjp, jvp, make_ir, vmap, ...

    @gj.grad
    def loss(w, x):
        return (gj.tanh(x @ w) ** 2).mean()

    loss(w, x)                 # traced once per signature, compiled, then native code
    gj.make_ir(loss)(w, x)     # the fused forward + adjoint program

Every transform returns a Staged function (tracer/staging.py): traced and compiled once per
input signature, and composable, because applied to traced inputs it just records its IR.
"""
from __future__ import annotations

import functools
import weakref

import numpy as np

from ir import Function
from ir.parser import parse
from ir.verify import verify
from tracer import pipeline
from tracer.control import remat
from tracer.jax_extras import static_positions
from tracer.ops.operands import user_error
from tracer.pytree import tree_flatten
from tracer.staging import (Staged, float_scalars_to_arrays, fun_name, normalize_argnums,
                            signature, trace)
from tracer.tracing import traced
from tracer.transforms import grad_body, jacobian_body, jvp_body, vjp_body
from tracer.vmap import vmap

__all__ = ["grad", "value_and_grad", "jit", "vjp", "jvp", "jacobian", "hessian", "make_ir",
           "run_ir", "vmap", "checkpoint"]


def _float_argnums(argnums):
    """prepare hook: Python floats among the differentiated arguments become f32 arrays."""
    def prepare(args, kwargs):
        try:
            nums = normalize_argnums(argnums, len(args), "argnums")
        except ValueError as e:
            raise user_error(ValueError, str(e)) from None
        for i in nums:
            _check_differentiable(args[i], i)
        args = tuple(float_scalars_to_arrays(a) if i in nums else a for i, a in enumerate(args))
        return args, kwargs
    return prepare


def _check_differentiable(arg, i: int):
    """A Python int or bool among the differentiated arguments is an error now, before f
    runs on it (as a static value it would otherwise reach f as a plain Python number)."""
    if isinstance(arg, (np.ndarray, np.generic)):
        return
    for x in tree_flatten(arg)[0]:
        if type(x) in (int, bool):
            raise user_error(TypeError, f"grad with respect to argument {i}: {x!r} is not a "
                                        f"float array but a Python {type(x).__name__}; "
                                        "integer and static inputs cannot be differentiated "
                                        "(pass a float, e.g. 3.0)")


def jit(f, static_argnums=(), static_argnames=()):
    """Traces f once per signature (shapes, dtypes, static args) and compiles it.

    Args:
        f: a function of arrays / Tensors / pytrees of them.
        static_argnums: positions of arguments passed as Python values (hashable); each new
            value is a new signature. Python scalars anywhere are static too.
        static_argnames: the same, by parameter name (passed by position or keyword).

    Returns:
        A callable returning gradjit Tensors; `.lower(*args)` gives `.ir`, `.llvm_ir` and
        `.compile()`.

    Arrays and Tensors that f closes over are captured when f is traced (as in JAX): they
    are fed to the compiled code on every call, but rebinding or updating them in place
    later is not seen by an already-traced signature.
    """
    if isinstance(f, Staged) and not static_argnums and not static_argnames:
        return f                       # already traced and compiled per signature
    static_argnums, prepare = static_positions(f, static_argnums, static_argnames)
    return Staged(traced(f), f, fun_name(f), static_argnums, prepare=prepare)


def _grad_staged(f, argnums, has_aux, with_value, suffix):
    single = isinstance(argnums, int)
    name = fun_name(f)

    def body(*args, **kwargs):
        nums = normalize_argnums(argnums, len(args), "argnums")
        return grad_body(f, name, nums, has_aux, with_value, single)(*args, **kwargs)

    staged = Staged(body, f, f"{name}_{suffix}", prepare=_float_argnums(argnums))
    # the primal program, for pictures and reports that tell forward from adjoint
    staged.primal = Staged(traced(f), f, name, prepare=_float_argnums(argnums))
    return staged


def grad(f, argnums=0, has_aux=False):
    """The gradient of scalar-valued f with respect to argument(s) argnums, compiled.

    Args:
        f: returns a float scalar (or a pair (scalar, aux) with has_aux=True).
        argnums: an int, or a tuple of ints (then a tuple of gradients is returned).
        has_aux: f returns (value, aux); the result is then (grads, aux).

    Returns:
        A function with f's arguments returning gradients shaped like those arguments
        (pytrees included).

    Raises:
        TypeError: f's output is not a float scalar, or a differentiated input is not float.
    """
    return _grad_staged(f, argnums, has_aux, False, "grad")


def value_and_grad(f, argnums=0, has_aux=False):
    """Like grad, returning (value, grads) (or ((value, aux), grads)) from one fused kernel."""
    return _grad_staged(f, argnums, has_aux, True, "value_and_grad")


# Staged objects per (function, transform), so repeated vjp/jvp calls reuse their traces.
_transform_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _cached(f, key, make):
    try:
        per_fun = _transform_cache.setdefault(f, {})
    except TypeError:                  # not weak-referenceable: no reuse
        return make()
    if key not in per_fun:
        per_fun[key] = make()
    return per_fun[key]


def vjp(f, *primals, has_aux=False):
    """(f(*primals), vjp_fn); vjp_fn(cotangent) returns one cotangent per primal.

    With has_aux=True, f returns (out, aux) and the result is (out, vjp_fn, aux).
    """
    primals = tuple(float_scalars_to_arrays(p) for p in primals)
    name = fun_name(f)
    out = _cached(f, ("jit",), lambda: jit(f))(*primals)
    staged = _cached(f, ("vjp", len(primals), has_aux), lambda: Staged(
        vjp_body(f, name, len(primals), has_aux), f, f"{name}_vjp"))

    def vjp_fn(cotangent):
        return staged(*primals, cotangent)

    if has_aux:
        return out[0], vjp_fn, out[1]
    return out, vjp_fn


def jvp(f, primals, tangents):
    """(f(*primals), the directional derivative of f at primals along tangents): forward mode."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise user_error(TypeError, "jvp expects primals and tangents as tuples (one entry per "
                                    "argument)")
    if len(primals) != len(tangents):
        raise user_error(TypeError, f"jvp got {len(primals)} primals and {len(tangents)} "
                                    "tangents")
    primals = tuple(float_scalars_to_arrays(p) for p in primals)
    tangents = tuple(float_scalars_to_arrays(t) for t in tangents)
    name = fun_name(f)
    staged = _cached(f, ("jvp", len(primals)), lambda: Staged(
        jvp_body(f, name, len(primals)), f, f"{name}_jvp"))
    return staged(*primals, *tangents)


def jacobian(f, argnums=0, has_aux=False):
    """The dense Jacobian of f (reverse mode, all rows at once): shape out.shape + in.shape.

    A tuple argnums gives a tuple of Jacobians; pytree outputs give the same pytree of them.
    """
    single = isinstance(argnums, int)
    name = fun_name(f)

    def body(*args, **kwargs):
        nums = normalize_argnums(argnums, len(args), "argnums")
        return jacobian_body(f, name, nums, single, has_aux)(*args, **kwargs)

    return Staged(body, f, f"{name}_jacobian", prepare=_float_argnums(argnums))


def hessian(f, argnums=0):
    """The dense Hessian of scalar f: the Jacobian of its gradient (out.shape + in.shape)."""
    inner = jacobian(f, argnums)
    outer = jacobian(inner, argnums)
    outer.name = f"{fun_name(f)}_hessian"
    return outer


def make_ir(f, static_argnums=()):
    """make_ir(f)(*args) -> the ir.Function f traces to (printable SSA; parse with ir.parse).

    For a transformed function (grad(f), jit(f), vmap(f), ...) this is the optimised program
    that gets compiled, e.g. the fused forward + adjoint of grad(f). A plain function is
    shown as traced, unoptimised.
    """
    def make(*args, **kwargs) -> Function:
        if isinstance(f, Staged):
            return f.trace_ir(*args, **kwargs)
        sig = signature(args, kwargs, static_argnums)
        return trace(traced(f), fun_name(f), sig, hint_fun=f).fn
    return make


def run_ir(fn: Function | str, *args):
    """Compiles (cached) and runs an ir.Function on NumPy inputs; returns NumPy arrays.

    fn may also be printed IR text (what `print(fn)` shows), which is parsed first.
    Returns the single result array, or a tuple when fn has several results.

    Raises:
        TypeError: fn is neither an ir.Function nor IR text, wrong number of arguments, or
            an argument whose shape/dtype cannot be converted to the parameter's type.
        ir.parser.ParseError: fn is text that does not parse.
    """
    if isinstance(fn, str):
        fn = parse(fn)
    elif not isinstance(fn, Function):
        raise user_error(TypeError, "run_ir expects an ir.Function (from make_ir or "
                                    f"ir.parse) or IR text, got {type(fn).__name__}")
    verify(fn)
    if len(args) != len(fn.params):
        raise user_error(TypeError, f"@{fn.name} takes {len(fn.params)} arguments, got "
                                    f"{len(args)}")
    arrays = []
    for i, (a, p) in enumerate(zip(args, fn.params)):
        arr = np.asarray(a)
        if arr.shape != p.type.shape:
            raise user_error(TypeError, f"@{fn.name}: argument {i} has shape "
                                        f"{list(arr.shape)}, parameter {i} is {p.type}")
        if not np.can_cast(arr.dtype, p.type.np_dtype, "same_kind"):
            raise user_error(TypeError, f"@{fn.name}: argument {i} has dtype {arr.dtype}, "
                                        f"parameter {i} is {p.type}")
        # NOTE: not np.ascontiguousarray, which turns a 0-d array into shape (1,)
        arrays.append(np.array(arr, dtype=p.type.np_dtype, order="C"))
    outs = [np.asarray(o) for o in pipeline.run(fn, arrays)]
    return outs[0] if len(outs) == 1 else tuple(outs)


def checkpoint(f):
    """f, marked for rematerialisation: reverse mode recomputes f's internals in the
    backward pass instead of saving them (only f's inputs are kept). See control.remat."""
    @functools.wraps(f)
    def remat_f(*args, **kwargs):
        return remat(f, *args, **kwargs)
    return remat_f
