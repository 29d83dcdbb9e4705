"""check_grads (after HIPS autograd and JAX): derivatives of IR Functions against finite
differences, on the reference interpreter, in float64. Also the small helpers the autodiff
tests build Functions with.

    fn = make_fn(lambda b, x, y: b.reduce_sum(b.mul(x, y), axes=(0,)), f64[3], f64[3])
    check_grads(fn, [x, y], order=2)
"""
from __future__ import annotations

import inspect

import numpy as np

from ir.autodiff import jvp, vjp
from ir.builder import Builder
from ir.core import Function, TensorType, Value, is_float
from ir.interpret import interpret


class _DType:
    """f64[3, 4] -> TensorType("f64", (3, 4)); f64[()] is a scalar."""

    def __init__(self, name: str):
        self.name = name

    def __getitem__(self, shape) -> TensorType:
        return TensorType(self.name, shape if isinstance(shape, tuple) else (shape,))


f32, f64, i32, i64, boolean = (_DType(n) for n in ("f32", "f64", "i32", "i64", "bool"))


def make_fn(build, *types: TensorType, name: str = "f") -> Function:
    """A Function from build(b, *params) -> result or tuple of results. The params are
    named after build's arguments (after b), so printed IR reads %x, %y."""
    named = [p.name for p in inspect.signature(build).parameters.values()
             if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD][1:]
    hints = named[:len(types)] + [None] * (len(types) - len(named))
    params = [Value(t, h) for t, h in zip(types, hints)]
    b = Builder()
    out = build(b, *params)
    results = list(out) if isinstance(out, (tuple, list)) else [out]
    return Function(name, params, b.ops, results)


def take_results(fn: Function, indices, name: str | None = None) -> Function:
    """fn returning only the results at indices (e.g. the gradient of a grad Function)."""
    return Function(name or fn.name, list(fn.params), list(fn.body),
                    [fn.results[i] for i in indices])


def as_float64(fn: Function) -> Function:
    """fn rebuilt with every f32 (params, results, convert/constant/iota dtypes) as f64."""
    widen = lambda t: t.with_dtype("f64") if t.dtype == "f32" else t  # noqa: E731
    params = [Value(widen(p.type), p.name_hint) for p in fn.params]
    env = dict(zip(fn.params, params))
    b = Builder()
    for op in fn.body:
        kwargs = {k: "f64" if k == "dtype" and v == "f32" else v for k, v in op.params.items()}
        b.loc = op.loc
        b.emit(op.prim, *(env[v] for v in op.inputs),
               regions=tuple(as_float64(r) for r in op.regions), **kwargs)
        for old, new in zip(op.results, b.ops[-1].results):
            new.name_hint = old.name_hint
            env[old] = new
    return Function(fn.name, params, b.ops, [env[r] for r in fn.results])


def random_like(rng, values) -> list[np.ndarray]:
    return [rng.standard_normal(v.type.shape) for v in values]


def _float_indices(values) -> list[int]:
    return [i for i, v in enumerate(values) if is_float(v.dtype)]


def numeric_grad(f, x, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of a scalar function f of one array at x (float64): the
    reference the front-end tests compare gradients with."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        g[i] = (float(f(x + step)) - float(f(x - step))) / (2 * eps)
    return g


def numeric_jvp(fn: Function, args, directions, eps: float) -> list[np.ndarray]:
    """Central differences of fn's float results along directions (one per float param)."""
    floats = _float_indices(fn.params)

    def at(scale):
        moved = list(args)
        for i, d in zip(floats, directions):
            moved[i] = args[i] + scale * d
        outs = interpret(fn, *moved)
        return [outs[i] for i in _float_indices(fn.results)]

    return [(hi - lo) / (2 * eps) for hi, lo in zip(at(eps), at(-eps))]


def _fail(what: str, fn: Function, analytic, numeric) -> str:
    return (f"{what} of @{fn.name} disagrees with finite differences\n"
            f"analytic: {analytic}\nnumeric:  {numeric}\n{fn}")


def _derivatives(fn, derived, args, extra) -> list[np.ndarray]:
    """Runs derived (fn's JVP or VJP) on args + extra; checks that its first results are
    fn's own and returns the rest (the tangents or cotangents)."""
    outs = interpret(derived, *args, *extra)
    n = len(fn.results)
    for got, want in zip(outs[:n], interpret(fn, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"primal of @{derived.name}")
    return outs[n:]


def check_jvp(fn, args, rng, eps, rtol, atol):
    """Forward mode: every result tangent against central differences. Returns (the JVP
    Function, its extra arguments) for the next order."""
    floats = _float_indices(fn.params)
    v = random_like(rng, [fn.params[i] for i in floats])
    jvp_fn = jvp(fn)
    tangents = _derivatives(fn, jvp_fn, args, v)
    numeric = numeric_jvp(fn, args, v, eps)
    for k, (t, nt) in enumerate(zip(tangents, numeric)):
        ok = np.allclose(t, nt, rtol=rtol, atol=atol)
        assert ok, _fail(f"forward-mode tangent of result {k}", fn, t, nt)
    return jvp_fn, v


def check_vjp(fn, args, rng, eps, rtol, atol):
    """Reverse mode: <J^T u, v> against <u, central difference along v>. Returns (the VJP
    Function, its extra arguments) for the next order."""
    floats = _float_indices(fn.params)
    u = random_like(rng, [fn.results[i] for i in _float_indices(fn.results)])
    v = random_like(rng, [fn.params[i] for i in floats])
    vjp_fn = vjp(fn)
    cotangents = _derivatives(fn, vjp_fn, args, u)
    analytic = sum(float(np.vdot(ct, d)) for ct, d in zip(cotangents, v))
    numeric = sum(float(np.vdot(w, d)) for w, d in zip(u, numeric_jvp(fn, args, v, eps)))
    ok = np.isclose(analytic, numeric, rtol=rtol, atol=atol)
    assert ok, _fail("reverse-mode <J^T u, v>", fn, analytic, numeric)
    return vjp_fn, u


def check_grads(fn: Function, args, order: int = 1, modes=("fwd", "rev"), eps: float = 1e-6,
                rtol: float = 1e-5, atol: float = 1e-7, seed: int = 0) -> None:
    """Checks fn's forward and/or reverse derivatives against finite differences.

    fn is run in float64 (f32 is widened). Reverse mode compares <J^T u, v> with the
    central-difference directional derivative <u, (f(x + eps v) - f(x - eps v)) / 2 eps>
    for random u, v; forward mode compares J v itself. order=2 then checks the VJP and
    JVP Functions the same way (derivatives of derivatives), and so on.

    Args:
        fn: the Function; its non-float params are held fixed.
        args: one array per param.
    Raises:
        AssertionError: with the analytic and numeric values and the IR on a mismatch.
        ValueError: fn has no float param or no float result (nothing would be checked).
    """
    fn = as_float64(fn)
    if not _float_indices(fn.params) or not _float_indices(fn.results):
        raise ValueError(f"@{fn.name} has no float parameter or no float result to check")
    args = [np.asarray(a, dtype=p.type.np_dtype) for a, p in zip(args, fn.params)]
    rng = np.random.default_rng(seed)
    checks = {"fwd": check_jvp, "rev": check_vjp}
    for mode in modes:
        derived, extra = checks[mode](fn, args, rng, eps, rtol, atol)
        if order > 1:
            check_grads(derived, args + extra, order - 1, modes, eps, rtol, atol, seed + 1)
