"""Builder: appends typed ops to a body, inferring result types from the primitive rules.

Used by the tracer, the autodiff rules and the passes alike:

    b = Builder()
    y = b.exp(x)                      # any primitive by name
    s = b.reduce_sum(y, axes=(0,))
    c = b.const(2.0, "f32")           # scalar constant; shape=() by default
"""
from __future__ import annotations

from ir.core import Function, Op, TensorType, Value
from ir.primitives import PRIMITIVES, ShapeError, get


class Builder:
    """Appends ops to `self.ops`; any primitive is a method: `b.exp(x)`, `b.reduce_sum(x,
    axes=(0,))`. Ops built while `loc` is set carry it as their source location."""

    def __init__(self, loc: str | None = None):
        self.ops: list[Op] = []
        self.loc = loc          # stamped on every op built while set

    def emit(self, prim, *inputs: Value, regions=(), **params):
        """Appends one op and returns its result (a tuple of results for control flow).

        Args:
            prim: a Primitive or its name.
            inputs: the operands.
            regions: the region Functions of a control-flow op.
            params: the op's params (lists become tuples, NumPy scalars Python ones).
        Raises:
            ShapeError: the primitive's rule rejects the operands or params (the message
                ends with the builder's location, if set).
            TypeError: an operand is not a Value.
            KeyError: no primitive has that name.
        """
        prim = get(prim) if isinstance(prim, str) else prim
        for v in inputs:
            if not isinstance(v, Value):
                raise TypeError(f"{prim.name}: operand {v!r} is not an IR Value")
        params = {k: _canonical(v) for k, v in params.items()}
        try:
            types = prim.infer([v.type for v in inputs], params, tuple(regions))
        except ShapeError as e:
            where = f" (at {self.loc})" if self.loc else ""
            raise ShapeError(f"{e}{where}", e.reason) from None
        results = tuple(Value(t) for t in types)
        self.ops.append(Op(prim, tuple(inputs), results, params, tuple(regions), self.loc))
        return results[0] if len(results) == 1 and prim.kind != "control" else results

    def __getattr__(self, name: str):
        if name in PRIMITIVES:
            return lambda *inputs, **params: self.emit(PRIMITIVES[name], *inputs, **params)
        raise AttributeError(name)

    def inline(self, fn: Function, args) -> list[Value]:
        """Appends a copy of fn's body applied to args; returns the copies of its results.

        Regions are closed, so they are shared, not copied. Locations are kept.

        Raises:
            TypeError: the number of args is not fn's number of params.
            ShapeError: an argument's type is not its parameter's.
        """
        if len(args) != len(fn.params):
            raise TypeError(f"inline @{fn.name}: {len(fn.params)} params, {len(args)} args")
        env = {}
        for p, a in zip(fn.params, args):
            if p.type != a.type:
                raise ShapeError(f"inline @{fn.name}: argument {a.type} for parameter {p.type}")
            env[p] = a
        for op in fn.body:
            results = tuple(Value(r.type, r.name_hint) for r in op.results)
            env.update(zip(op.results, results))
            inputs = tuple(env[v] for v in op.inputs)
            self.ops.append(Op(op.prim, inputs, results, dict(op.params), op.regions, op.loc))
        return [env[r] for r in fn.results]

    # ---- conveniences used everywhere ----

    def const(self, value, dtype: str, shape=()) -> Value:
        """A constant: a Python scalar splatted over shape, or a nested list of shape."""
        if isinstance(value, (list, tuple)):
            value = _canonical(value)
        elif dtype in ("f32", "f64"):
            value = float(value)
        elif dtype == "bool":
            value = bool(value)
        else:
            value = int(value)
        return self.emit("constant", value=value, dtype=dtype, shape=tuple(shape))

    def full_like(self, value, x: Value) -> Value:
        """A constant of x's type, every element value."""
        return self.const(value, x.dtype, x.shape)

    def broadcast_to(self, x: Value, shape) -> Value:
        """NumPy-style broadcast of x to shape (leading axes added, size-1 axes stretched).

        Raises:
            ShapeError: x does not broadcast to shape.
        """
        shape = tuple(shape)
        if x.shape == shape:
            return x
        lead = len(shape) - len(x.shape)
        if lead < 0:
            raise ShapeError(f"cannot broadcast {x.type} to {list(shape)}")
        dims = tuple(range(lead, len(shape)))
        return self.broadcast_in_dim(x, shape=shape, dims=dims)

    def sum_to(self, x: Value, shape) -> Value:
        """Undo NumPy broadcasting: sums x down to shape (the VJP of broadcast_to)."""
        shape = tuple(shape)
        if x.shape == shape:
            return x
        lead = len(x.shape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1)
        if axes:
            x = self.reduce_sum(x, axes=axes)
        if x.shape != shape:
            x = self.reshape(x, shape=shape)
        return x


def _canonical(v):
    """Params are immutable and printable: lists become tuples, numpy scalars Python ones."""
    if isinstance(v, (list, tuple)):
        return tuple(_canonical(e) for e in v)
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return v.item()
    return v


def function_from(name: str, params: list[Value], builder: Builder, results) -> Function:
    """Wraps a builder's ops into a Function (ops are already in topological order)."""
    return Function(name, list(params), list(builder.ops), list(results))


def new_param(t: TensorType, hint: str | None = None) -> Value:
    """A fresh Value of type t, to be a Function parameter."""
    return Value(t, hint)
