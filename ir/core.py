"""The IR data model: dtypes, TensorType, Value, Primitive, Op, Function.

SSA by construction: a Value is defined once (a Function parameter or one Op result) and
is compared by identity. Passes never mutate a Function they were given; they build new ones.
"""
from __future__ import annotations

import inspect
import math
import operator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import numpy as np

from ir.dot import RenderError, function_to_dot, render_svg
from ir.printer import print_application, print_function

# dtype name -> numpy dtype. The names are the printed spelling.
DTYPES = {
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "bool": np.dtype(np.bool_),
}
FLOAT_DTYPES = ("f32", "f64")
INT_DTYPES = ("i32", "i64")


def dtype_of_numpy(np_dtype) -> str:
    """The IR dtype name of a NumPy dtype; raises TypeError for unsupported ones."""
    np_dtype = np.dtype(np_dtype)
    for name, dt in DTYPES.items():
        if dt == np_dtype:
            return name
    raise TypeError(f"unsupported dtype {np_dtype} (gradjit supports {', '.join(DTYPES)})")


def is_float(dtype: str) -> bool:
    """Whether dtype (a name such as 'f32') is a floating-point dtype."""
    return dtype in FLOAT_DTYPES


@dataclass(frozen=True)
class TensorType:
    """The static type of a Value: element dtype and a fully known shape."""
    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise TypeError(f"unknown dtype {self.dtype!r} (known: {', '.join(DTYPES)})")
        object.__setattr__(self, "shape", tuple(_dimension(d) for d in self.shape))
        if any(d < 0 for d in self.shape):
            raise ValueError(f"negative dimension in shape {list(self.shape)}")
        # types are dict keys on every hot path (caches keyed by structure): hash once. The
        # cached value is per process (str hashes are salted), so __reduce__ leaves it out
        object.__setattr__(self, "_hash", hash((self.dtype, self.shape)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self):
        return (TensorType, (self.dtype, self.shape))

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of elements (a Python int: it never overflows)."""
        return math.prod(self.shape)

    @property
    def np_dtype(self) -> np.dtype:
        """The NumPy dtype of the elements."""
        return DTYPES[self.dtype]

    def with_shape(self, shape) -> "TensorType":
        """This dtype with another shape."""
        return TensorType(self.dtype, tuple(shape))

    def with_dtype(self, dtype: str) -> "TensorType":
        """This shape with another dtype."""
        return TensorType(dtype, self.shape)

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"


def _dimension(d) -> int:
    """d as a Python int; ints and NumPy integers only (a float such as 2.5 is an error,
    not silently truncated)."""
    try:
        return operator.index(d)
    except TypeError:
        raise TypeError(f"dimension {d!r} is not an integer") from None


@dataclass(eq=False)
class Value:
    """An SSA value: a function parameter or the result of exactly one Op."""
    type: TensorType
    name_hint: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the value's type."""
        return self.type.shape

    @property
    def dtype(self) -> str:
        """The dtype name of the value's type."""
        return self.type.dtype

    @property
    def ndim(self) -> int:
        """The rank of the value's type."""
        return self.type.ndim

    def __repr__(self) -> str:
        hint = f" {self.name_hint}" if self.name_hint else ""
        return f"<Value{hint}: {self.type}>"


class ShapeError(TypeError, RuntimeError):
    """An op was applied to operands whose shapes or dtypes do not fit its rule.

    A TypeError as in JAX, and a RuntimeError as PyTorch raises for shape mismatches. The
    message is the reason (which names the primitive) and, on the next line, the failed
    application with its operand types and params; `reason` holds the first part alone.
    """

    def __init__(self, msg: str, reason: str | None = None):
        super().__init__(msg)
        self.reason = msg if reason is None else reason


@dataclass(frozen=True, eq=False)
class Primitive:
    """One IR operation: its name, its kind, the rule giving its result types, and the
    traits that passes ask about (ir/primitives.py sets them; every pass's set of
    primitives is built from them, never written by hand).

    kind is 'unary', 'binary', 'compare', 'reduce', 'shape', 'other' or 'control' (the ops
    with regions). The shape rule's keyword-only arguments are the op's params.
    """
    name: str
    shape_rule: Callable[..., TensorType | tuple]
    kind: str
    # result element i depends only on operand elements i (operands and result of one shape)
    elementwise: bool = False
    # swapping the operands gives the very same bits (CSE); not max/min: -0.0 vs 0.0
    commutative: bool = False
    # False: the derivative is zero everywhere (piecewise constant, integer or bool valued,
    # or stop_gradient); such ops get no tangent and give no cotangent
    differentiable: bool = True
    # one operand, linear in it: the tangent of the result is the op applied to the tangent
    linear: bool = False
    # the result is the operand's elements rearranged, each kept (a splat stays that splat)
    rearranges: bool = False
    # inlined, the op may evaluate an operand element more than once per result element
    expands: bool = False
    # what one inlined element costs (codegen.fusion): 'cheap', 'divide', 'transcendental',
    # or 'power' (integer_pow: by its exponent)
    cost: str = "cheap"
    # how code is generated: 'inline' (computed in its consumer's loop), 'materialize' (always
    # gets a buffer: reductions), 'kernel' (a step of its own: dots, scatter, control flow);
    # what is not 'inline' is also never recomputed by a loop's adjoint (ir/autodiff/partition)
    fusion: str = "inline"

    @cached_property
    def signature(self) -> tuple[int | None, frozenset, frozenset | None]:
        """(operand count; required param names; allowed param names), read off the shape
        rule's signature. None stands for any: a rule taking *xs or **params."""
        params = inspect.signature(self.shape_rule).parameters.values()
        kinds = [p.kind for p in params]
        arity = None if inspect.Parameter.VAR_POSITIONAL in kinds else sum(
            k is inspect.Parameter.POSITIONAL_OR_KEYWORD for k in kinds)
        kw = [p for p in params
              if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "regions"]
        required = frozenset(p.name for p in kw if p.default is inspect.Parameter.empty)
        allowed = None if inspect.Parameter.VAR_KEYWORD in kinds else frozenset(
            p.name for p in kw)
        return arity, required, allowed

    def infer(self, in_types, params, regions=()) -> tuple[TensorType, ...]:
        """The result types of this primitive applied to operands of in_types.

        Args:
            in_types: the operands' TensorTypes.
            params: the op's params (keyword arguments of the shape rule).
            regions: the op's region Functions (control-flow primitives only).
        Raises:
            ShapeError: the operands, params or regions do not fit; the message names the
                primitive, the reason and the application (operand types and params).
        """
        try:
            return self._infer(list(in_types), params, tuple(regions))
        except ShapeError as e:
            reason = e.reason
        except (TypeError, ValueError, LookupError, ArithmeticError) as e:
            # malformed params (a scalar for a tuple, a negative or fractional dimension)
            reason = f"{self.name}: {e}"
        raise ShapeError(f"{reason}\n  in: {print_application(self.name, in_types, params)}",
                         reason)

    def _infer(self, in_types, params, regions) -> tuple[TensorType, ...]:
        arity, required, allowed = self.signature
        if arity is not None and len(in_types) != arity:
            plural = "" if arity == 1 else "s"
            raise ShapeError(f"{self.name} takes {arity} operand{plural}, got {len(in_types)}")
        missing = sorted(required - set(params))
        unknown = [] if allowed is None else sorted(set(params) - allowed)
        if missing:
            raise ShapeError(f"{self.name}: missing param '{missing[0]}'")
        if unknown:
            raise ShapeError(f"{self.name}: unknown param '{unknown[0]}'")
        kwargs = dict(params)
        if self.kind == "control":
            kwargs["regions"] = regions
        elif regions:
            raise ShapeError(f"{self.name} takes no regions, got {len(regions)}")
        out = self.shape_rule(*in_types, **kwargs)
        return out if isinstance(out, tuple) else (out,)

    def __repr__(self) -> str:
        return self.name


@dataclass(eq=False)
class Op:
    """One primitive application. `prim` is a Primitive from ir.primitives.PRIMITIVES."""
    prim: Primitive
    inputs: tuple[Value, ...]
    results: tuple[Value, ...]
    params: dict[str, Any] = field(default_factory=dict)
    regions: tuple["Function", ...] = ()
    loc: str | None = None        # the user's file:line that traced this op

    @property
    def result(self) -> Value:
        """The op's only result.

        Raises:
            ValueError: the op has no result or several.
        """
        if len(self.results) != 1:
            raise ValueError(f"op '{self.prim.name}' has {len(self.results)} results")
        return self.results[0]

    def __repr__(self) -> str:
        return f"<Op {self.prim.name}>"


def dot_free_axes(ndim: int, contract, batch) -> tuple[int, ...]:
    """The axes of a dot_general operand of rank ndim that are neither contracted nor
    batched: they follow the batch axes in the result, the lhs's before the rhs's."""
    return tuple(a for a in range(ndim) if a not in contract and a not in batch)


def freeze(v):
    """A hashable stand-in for an op param value that tells apart what the printer tells
    apart (1 from 1.0 from True, 0.0 from -0.0, which == confuses) and makes nan equal to
    itself. Dicts (op.params) freeze in key order, as the printer writes them."""
    t = type(v)
    if t is int or t is str or t is bool or v is None:
        return (t, v)
    if t is float:
        return v.hex()
    if t is tuple and all(type(x) is int for x in v):
        return v                 # the common case (axes, shapes): nothing else freezes to it
    if t is tuple or t is list:
        return (t, tuple([freeze(x) for x in v]))
    if t is dict:
        return (dict, tuple(sorted([(k, freeze(x)) for k, x in v.items()])))
    if isinstance(v, np.ndarray):
        return (np.ndarray, v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, np.generic):
        return (type(v), v.tobytes())
    return (t, repr(v))


@dataclass(eq=False)
class Function:
    """A typed SSA function: parameters, a topologically ordered body, results."""
    name: str
    params: list[Value]
    body: list[Op]
    results: list[Value]
    # the Function this one differentiates (set by make_ir of a grad): to_dot colours by it
    primal: "Function | None" = field(default=None, repr=False)

    @property
    def param_types(self) -> list[TensorType]:
        """The types of the parameters, in order."""
        return [p.type for p in self.params]

    @property
    def result_types(self) -> list[TensorType]:
        """The types of the results, in order."""
        return [r.type for r in self.results]

    def __str__(self) -> str:
        return print_function(self)

    def to_dot(self, primal: "Function | None" = None) -> str:
        """The dataflow graph as Graphviz DOT text (ir/dot.py): ops, regions as clusters,
        parameters and results marked; forward and adjoint ops coloured apart when this
        Function differentiates `primal` (make_ir(grad(f)) sets it)."""
        return function_to_dot(self, primal if primal is not None else self.primal)

    def to_svg(self) -> str:
        """The picture of to_dot() as SVG text (needs Graphviz: see ir.dot.render_svg)."""
        return render_svg(self.to_dot())

    def _repr_svg_(self):
        try:
            return render_svg(self.to_dot())
        except RenderError:
            return None          # Jupyter falls back to the text

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.param_types))
        outs = ", ".join(map(str, self.result_types))
        return f"<Function @{self.name}({ins}) -> ({outs}), {len(self.body)} ops>"


def walk_ops(fn: Function):
    """Yields every op of fn, including those nested in regions (pre-order)."""
    for op in fn.body:
        yield op
        for region in op.regions:
            yield from walk_ops(region)
