"""Staging: trace a Python function once per input signature into an ir.Function, then run it.

Every functional transform (jit, grad, vjp, jvp, jacobian, vmap) is a `Staged` object: a
*body* (Python code working on Tensors) traced with symbolic parameters for the array
leaves of its arguments, cut into an ir.Function, optimised, and cached per signature
(argument tree structure, leaf types, static values). Calling it then either

  - runs the compiled function on the concrete arrays (the usual case), or
  - records the function into an enclosing trace when any input is symbolic (jit inside
    jit, grad(jit(f)), grad(grad(f)), ...): the outer trace then sees plain IR, which is
    what makes the transforms compose.

Python scalars (bool, int, float) and other non-array leaves are static: their values are
part of the cache key and the traced function sees them as plain Python values.

A call whose positional arguments are all NumPy arrays, NumPy scalars or realised Tensors
first tries a prepared `CallPlan` (tracer/call_plan.py).
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ir import Function, TensorType, Value, passes
from ir.core import DTYPES, dtype_of_numpy
from runtime import config, phases
from tracer import captures as capture_log
from tracer import pipeline
from tracer.autograd.recording import record_call
from tracer.call_plan import CallPlan, fast_key
from tracer.errors import user_location
from tracer.expr import Expr, apply_function, build_function, data_expr, param_expr
from tracer.pytree import TreeDef, tree_flatten, tree_unflatten
from tracer.signature import (FAST_LEAVES, Signature, is_array_leaf, leaf_hints,
                              normalize_argnums, signature)
from tracer.tensor import Tensor, realize

__all__ = ["Signature", "Staged", "Traced", "apply_to", "as_tensor", "fun_name",
           "float_scalars_to_arrays", "is_array_leaf", "leaf_type", "normalize_argnums",
           "project", "signature", "to_expr", "trace", "trace_inner"]

# dtype of a Python scalar turned into an array (PyTorch's defaults)
PY_SCALAR_DTYPES = {bool: "bool", int: "i64", float: "f32"}


def leaf_type(x) -> TensorType:
    if isinstance(x, Tensor):
        return x._expr.type
    arr = np.asarray(x)
    return TensorType(dtype_of_numpy(arr.dtype), arr.shape)


def to_expr(x) -> Expr:
    """The Expr of an array-like leaf: a Tensor's own, or new data for arrays and scalars."""
    if isinstance(x, Tensor):
        return x._expr
    if type(x) in PY_SCALAR_DTYPES:
        arr = np.asarray(x, DTYPES[PY_SCALAR_DTYPES[type(x)]])
    elif isinstance(x, (np.ndarray, np.generic)):
        arr = np.asarray(x)
    else:
        raise TypeError(f"expected an array, a Tensor or a Python scalar, got "
                        f"{type(x).__name__} {x!r}")
    return data_expr(arr)


def as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(to_expr(x))


def float_scalars_to_arrays(tree):
    """Python floats become f32 0-d arrays (JAX's weak float): they can be differentiated."""
    if type(tree) in FAST_LEAVES:
        return tree
    leaves, treedef = tree_flatten(tree)
    return tree_unflatten(treedef, [np.float32(x) if type(x) is float else x for x in leaves])


# ---- tracing -----------------------------------------------------------------------------

@dataclass
class Traced:
    """f traced once: fn's params are the array leaves of the arguments, then captures."""
    fn: Function
    captures: list[Expr]
    out_tree: TreeDef
    sig: Signature
    owners: list = field(default_factory=list)   # per capture: its Tensor, or None

    def inputs(self) -> list[Expr]:
        """The Exprs to apply fn to: the call's own array leaves, then the captures."""
        return [to_expr(x) for x in self.sig.arrays] + list(self.captures)

    def arg_params(self, i: int) -> list[int]:
        """Indices into fn.params of the array leaves of positional argument i."""
        out, k = [], 0
        for x, owner in zip(self.sig.leaves, self.sig.owners):
            if is_array_leaf(x):
                if owner == i:
                    out.append(k)
                k += 1
        return out

    def arg_leaves(self, i: int) -> list:
        """All leaves (array or static) of positional argument i, with its tree."""
        return [x for x, owner in zip(self.sig.leaves, self.sig.owners) if owner == i]


def trace(fun, name: str, sig: Signature, hint_fun=None) -> Traced:
    """Runs fun on Tensors with fresh symbolic params for sig's array leaves; cuts the IR."""
    hints = leaf_hints(hint_fun or fun, sig)
    params, leaves = [], []
    for x, hint in zip(sig.leaves, hints):
        if is_array_leaf(x):
            p = param_expr(leaf_type(x), hint or None)
            params.append(p)
            leaves.append(Tensor(p))
        else:
            leaves.append(x)
    args, kwargs = sig.rebuild(leaves)
    _log(f"tracing {name} for {_describe_key(sig)}")
    with phases.phase("trace"), capture_log.reading() as log:
        out = fun(*args, **kwargs)
    out_leaves, out_tree = tree_flatten(out)
    outputs = []
    for o in out_leaves:
        try:
            outputs.append(to_expr(o))
        except TypeError:
            raise TypeError(f"function '{name}' returned {type(o).__name__} {o!r}: traced "
                            "functions must return arrays, Tensors, scalars or pytrees of "
                            "them") from None
    fn, captures = build_function(name, params, outputs)
    return Traced(fn, captures, out_tree, sig, capture_log.owners(log, captures))


def trace_inner(fun, name: str, args: tuple, kwargs: dict | None = None) -> Traced:
    """Traces fun called with args (inside a transform's body; args may be symbolic)."""
    return trace(fun, name, signature(tuple(args), kwargs or {}))


def project(fn: Function, indices) -> Function:
    """fn restricted to some of its results (the unused ops are dropped by optimisation)."""
    return Function(fn.name, list(fn.params), list(fn.body), [fn.results[i] for i in indices])


def apply_to(fn: Function, exprs: list[Expr]) -> list[Tensor]:
    return [Tensor(e) for e in apply_function(fn, exprs)]


def fun_name(fun) -> str:
    name = getattr(fun, "__name__", None) or type(fun).__name__
    return "lambda" if name == "<lambda>" else name


# ---- running -----------------------------------------------------------------------------

@dataclass
class Entry:
    """One traced-and-optimised signature of a Staged function (the cache entry).

    A capture held by a Tensor (tracer/captures.py) is that Tensor's *current* value on
    every call, and an input of the autograd graph; other captures are constants (the
    Expr is kept only for those, so a parameter's old values are not kept alive)."""
    fn: Function
    constants: list                   # per capture: its Expr when no Tensor owns it
    owners: list                      # per capture: the Tensor whose value it is, or None
    out_tree: TreeDef
    exe: object = field(default=None, repr=False)
    optimized: bool = False           # fn went through ir.passes.optimize already

    @property
    def captures(self) -> list[Expr]:
        """The capture parameters' values now."""
        return [c if t is None else t._expr for c, t in zip(self.constants, self.owners)]

    def capture_inputs(self) -> list:
        """Per capture: its Tensor (for an autograd edge), else its Expr."""
        return [c if t is None else t for c, t in zip(self.constants, self.owners)]

    def stale(self) -> bool:
        """Whether a captured Tensor changed type since the trace (retrace then)."""
        types = self.fn.param_types[len(self.fn.params) - len(self.owners):]
        return any(t is not None and t._expr.type != ty for t, ty in zip(self.owners, types))

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        self.exe = pipeline.current(self.exe, self.fn, optimized=self.optimized)
        return list(self.exe(*arrays))

    def call(self, arrays_in: list) -> list[Tensor]:
        """Runs on the array leaves (compiled), or records into an enclosing trace."""
        caps = self.captures
        arrays = _concrete(arrays_in, caps)
        if arrays is None:
            exprs = [to_expr(x) for x in arrays_in] + caps
            if any(e.symbolic for e in exprs):
                # an enclosing trace captures what this one did: tell it the owners
                capture_log.note([t for t in self.owners if t is not None])
                return apply_to(self.fn, exprs)
            arrays = realize(exprs)
        outs = wrap_results(self.run(arrays), self.fn)
        cap_inputs = self.capture_inputs()
        if any(isinstance(x, Tensor) and x.requires_grad for x in arrays_in + cap_inputs):
            # a compiled call on Tensors that require grad (arguments or captured ones) is
            # one node of the imperative autograd graph, differentiated through fn like
            # any recorded op
            inputs = [x if isinstance(x, Tensor) else to_expr(x) for x in arrays_in]
            record_call(self.fn.name, self.fn, inputs + cap_inputs, outs)
        return outs


def _concrete(arrays_in: list, captures: list[Expr]) -> list | None:
    """The inputs as arrays when all are already concrete (the fast path of a cached call),
    else None (some input is symbolic or not computed yet)."""
    arrays = []
    for x in arrays_in:
        if type(x) is np.ndarray:
            arrays.append(x)
        elif isinstance(x, Tensor):
            if x._expr.data is None:
                return None
            arrays.append(x._expr.data)
        else:
            arrays.append(np.asarray(x))
    for c in captures:
        if c.data is None:
            return None
        arrays.append(c.data)
    return arrays


def wrap_results(outs: list[np.ndarray], fn: Function) -> list[Tensor]:
    """Tensors over the fresh result arrays of a run (never aliases of the inputs)."""
    tensors = []
    for out, t in zip(outs, fn.result_types):
        out.setflags(write=False)
        tensors.append(Tensor(Expr(Value(t), data=out)))
    return tensors


class Staged:
    """A function traced once per signature and compiled (see the module docstring)."""

    def __init__(self, body, fun, name: str, static_argnums=(), prepare=None, optimize=True):
        self.body = body              # Python on Tensors: what gets traced
        self.fun = fun                # the user's function (name hints, __name__)
        self.name = name
        self.static_argnums = static_argnums
        self.prepare = prepare        # (args, kwargs) -> (args, kwargs), before the signature
        self.optimize = optimize
        # signature key -> Entry, least recently used first; at most GRADJIT_MEMORY_CACHE_SIZE
        self.cache: OrderedDict[tuple, Entry] = OrderedDict()
        self.plans: dict[tuple, CallPlan] = {}        # fast_key -> plan of a cached entry
        self.quick: CallPlan | None = None            # the plan call_fast served last
        self.trace_count = 0
        self.primal: Staged | None = None    # what a derivative differentiates (ir.Function.primal)
        functools.update_wrapper(self, fun, updated=())

    def __get__(self, obj, objtype=None):
        # used as a method decorator: bind like a function would
        return self if obj is None else functools.partial(self, obj)

    def signature(self, args, kwargs) -> Signature:
        if self.prepare is not None:
            args, kwargs = self.prepare(tuple(args), dict(kwargs))
        return signature(tuple(args), dict(kwargs), self.static_argnums)

    def entry(self, sig: Signature) -> Entry:
        entry = self.cache.get(sig.key)
        if entry is not None:
            if not entry.stale():
                _log(f"cache hit: {self.name}")
                self.cache.move_to_end(sig.key)
                return entry
            self.plans.clear()        # plans of the stale entry hold its executable
            self.quick = None
        self.trace_count += 1
        with phases.collect() as times:
            traced = trace(self.body, self.name, sig, hint_fun=self.fun)
            fn = traced.fn
            if self.optimize:
                with phases.phase("optimise"):
                    fn = passes.optimize(fn)
        if times:
            config.event("trace", f"traced {self.name} [{phases.breakdown(times)}]",
                         function=self.name,
                         phases_ms={k: round(v * 1e3, 3) for k, v in times.items()})
        constants = [None if t is not None else c for c, t in zip(traced.captures, traced.owners)]
        entry = Entry(fn, constants, traced.owners, traced.out_tree, optimized=self.optimize)
        if not any(c.symbolic for c in entry.captures):
            # a closure over an enclosing trace's value is only valid during that trace
            self.cache[sig.key] = entry
            self._evict(config.memory_cache_size())
        return entry

    def _evict(self, limit: int):
        """Drops the least recently used signatures beyond limit (and every call plan, which
        may hold their executables): a function called with ever new shapes stays bounded."""
        if len(self.cache) <= limit:
            return
        while len(self.cache) > limit:
            key, _ = self.cache.popitem(last=False)
            if config.logging_enabled():
                config.event("evict", f"{self.name}: {limit} signatures cached, dropped "
                             f"{_describe_key_parts(key)}, the least recently used",
                             function=self.name, limit=limit)
        self.plans.clear()
        self.quick = None

    def __call__(self, *args, **kwargs):
        key = None
        if not kwargs:
            quick = self.quick               # the plan of the last fast call: guards only
            if quick is not None and pipeline.plain_native():
                out = quick.call_fast(args)
                if out is not None:
                    return out
            if not self.static_argnums:
                key = fast_key(args, statics=self.prepare is None)
                plan = self.plans.get(key)
                if plan is not None and pipeline.plain_native():
                    out = plan(args)
                    if out is not None:
                        if plan.fast is not None:
                            self.quick = plan
                        return out
        sig = self.signature(args, kwargs)
        entry = self.entry(sig)
        out = tree_unflatten(entry.out_tree, entry.call(sig.arrays))
        if key is not None and entry.exe is not None and pipeline.plain_native() \
                and self.cache.get(sig.key) is entry and key not in self.plans \
                and all(c.data is not None for c in entry.captures):
            self.plans[key] = CallPlan(entry, args)
        return out

    def trace_ir(self, *args, **kwargs) -> Function:
        """The (optimised) ir.Function this would run for these arguments."""
        fn = self.entry(self.signature(args, kwargs)).fn
        if self.primal is not None and fn.primal is None:
            fn.primal = self.primal.trace_ir(*args, **kwargs)
        return fn

    def lower(self, *args, **kwargs) -> "Lowered":
        sig = self.signature(args, kwargs)
        self.trace_ir(*args, **kwargs)
        return Lowered(self, sig.key, self.entry(sig))

    def __repr__(self) -> str:
        return f"<gradjit {self.name}: {len(self.cache)} cached signature(s)>"


class Lowered:
    """jit(f).lower(*args): the optimised IR, its LLVM IR, and compile()."""

    def __init__(self, staged: Staged, key: tuple, entry: Entry):
        self._staged, self._key, self._entry = staged, key, entry
        self._lowered = None

    @property
    def ir(self) -> Function:
        return self._entry.fn

    def _runtime_lowered(self):
        if self._lowered is None:
            import runtime  # NOTE: late: runtime loads llvmlite, `import tracer` does not
            self._lowered = runtime.lower(self._entry.fn)
        return self._lowered

    @property
    def llvm_ir(self) -> str:
        return str(self._runtime_lowered().llvm_ir)

    def as_text(self) -> str:
        return str(self.ir)

    def fusion_report(self):
        """Which ops each generated kernel holds, what is stored and why, bytes moved, and
        for a derivative which forward values are saved (codegen/report.py)."""
        return self._runtime_lowered().fusion_report()

    def compile(self) -> "Compiled":
        return Compiled(self._staged, self._key, self._entry, self._runtime_lowered().compile())


class Compiled:
    """A compiled signature: call it with arguments of exactly that signature."""

    def __init__(self, staged: Staged, key: tuple, entry: Entry, exe):
        self._staged, self._key, self._entry, self._exe = staged, key, entry, exe

    def __call__(self, *args, **kwargs):
        sig = self._staged.signature(args, kwargs)
        if sig.key != self._key:
            raise TypeError(f"this executable was compiled for {_describe_key_parts(self._key)}, "
                            f"called with {_describe_key(sig)}")
        arrays = realize([to_expr(x) for x in sig.arrays] + self._entry.captures)
        outs = wrap_results(list(self._exe(*arrays)), self._entry.fn)
        return tree_unflatten(self._entry.out_tree, outs)


# ---- logging -----------------------------------------------------------------------------

def _describe_key_parts(key: tuple) -> str:
    parts = []
    for p in key[1]:
        static = len(p) == 2 and isinstance(p[0], type)
        parts.append(repr(p[1]) if static else f"{p[0]}[{','.join(map(str, p[1]))}]")
    return "(" + ", ".join(parts) + ")"


def _describe_key(sig: Signature) -> str:
    return _describe_key_parts(sig.key)


def _log(msg: str):
    """GRADJIT_LOG=1: log traces and signature-cache hits to the "gradjit" logger."""
    if config.logging_enabled():
        where = user_location()
        config.log.info("%s%s", msg, f" (at {where})" if where else "")
