"""Runs one random program every way gradjit can and compares:

- forward: jit (native code) == jit under GRADJIT_BACKEND=interpret (ir.interpret) == the
  imperative front (lazy Tensors) == NumPy (the formula, in float64);
- derivatives, in float64: grad (jit, interpreter and `.backward()`), JVP and HVP against
  central finite differences of the NumPy formula (HVP: of the checked gradient).

Finite differences only mean something where the function is smooth: a derivative is
compared only when the differences at two step sizes agree (a kink or a jump between
x - eps and x + eps makes them disagree); otherwise it counts as skipped.
"""
from __future__ import annotations

import os
import traceback
import warnings
from contextlib import contextmanager

import numpy as np

import gradjit as gj
from tests.fuzz.namespaces import GJ, NP
from tests.fuzz.programs import Program, execute, sample_inputs

EPS, EPS_WIDE = 1e-6, 1e-4


class Report:
    def __init__(self, prog: Program):
        self.prog = prog
        self.failures: list[tuple[str, str]] = []
        self.skipped: list[str] = []

    def fail(self, kind: str, detail: str):
        self.failures.append((kind, detail))

    def __str__(self) -> str:
        return "\n".join([str(self.prog)] + [f"[{k}] {d}" for k, d in self.failures])


@contextmanager
def backend(name: str | None):
    old = os.environ.get("GRADJIT_BACKEND")
    if name is None:
        os.environ.pop("GRADJIT_BACKEND", None)
    else:
        os.environ["GRADJIT_BACKEND"] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GRADJIT_BACKEND", None)
        else:
            os.environ["GRADJIT_BACKEND"] = old


def _np(xs) -> list[np.ndarray]:
    return [np.asarray(x.numpy() if hasattr(x, "numpy") else x) for x in xs]


def _close(got, want, rtol, atol_scale) -> str | None:
    """None when got matches want (nan where nan, same shape), else the reason."""
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g.shape != w.shape:
            return f"result {k}: shape {g.shape} != {w.shape}"
        finite = np.isfinite(w)
        if not np.array_equal(np.isnan(g), np.isnan(w)) or not np.array_equal(
                g[~finite & ~np.isnan(w)], w[~finite & ~np.isnan(w)]):
            return f"result {k}: non-finite values differ\n got {g}\nwant {w}"
        scale = max(1.0, float(np.max(np.abs(w[finite]), initial=0.0)))
        if not np.allclose(g[finite], w[finite], rtol=rtol, atol=atol_scale * scale):
            return f"result {k}: got {g}\nwant {w}"
    return None


def _attempt(report: Report, kind: str, fn):
    try:
        return fn()
    except Exception as e:          # noqa: BLE001 (every crash is a finding)
        report.fail(f"crash:{kind}", f"{type(e).__name__}: {e}\n"
                    + "".join(traceback.format_tb(e.__traceback__)[-3:]))
        return None


def _jit(prog):
    return gj.jit(lambda *a: tuple(execute(prog, GJ, a)))


def _eager(prog, args, requires_grad=False):
    ts = [gj.tensor(a, requires_grad=requires_grad) for a in args]
    return ts, execute(prog, GJ, ts)


def quiet_numpy():
    """NumPy's warnings (mean of an empty slice: nan) are part of the formula, not news."""
    warnings.simplefilter("ignore", RuntimeWarning)
    return np.errstate(all="ignore")


def check_forward(report: Report, args):
    prog = report.prog
    with warnings.catch_warnings(), quiet_numpy():
        ref = [np.asarray(r) for r in execute(prog, NP, [a.astype(np.float64) for a in args])]
    f32 = prog.dtype == "float32"
    tight = (1e-4, 1e-5) if f32 else (1e-10, 1e-12)
    loose = (2e-3, 2e-3) if f32 else (1e-8, 1e-10)
    compiled = _attempt(report, "jit", lambda: _np(_jit(prog)(*args)))
    with backend("interpret"):
        interpreted = _attempt(report, "interpret", lambda: _np(_jit(prog)(*args)))
    eager = _attempt(report, "eager", lambda: _np(_eager(prog, args)[1]))
    pairs = [("jit vs interpret", compiled, interpreted, tight),
             ("eager vs interpret", eager, interpreted, tight)]
    if not (f32 and prog.rough):       # f32 rounding may flip a branch that f64 does not
        pairs += [("jit vs numpy", compiled, ref, loose), ("eager vs numpy", eager, ref, loose)]
    for what, got, want, (rtol, atol) in pairs:
        if got is not None and want is not None:
            why = _close(got, want, rtol, atol)
            if why:
                report.fail(f"forward:{what}", why)
    return ref


def _directional(f, args, v, eps):
    plus = f([a + eps * d for a, d in zip(args, v)])
    minus = f([a - eps * d for a, d in zip(args, v)])
    return [(np.asarray(p, np.float64) - np.asarray(q, np.float64)) / (2 * eps)
            for p, q in zip(plus, minus)]


def _smooth_fd(f, args, v):
    """Central differences along v, or None where two step sizes disagree (not smooth)."""
    with warnings.catch_warnings(), quiet_numpy():
        fine, wide = _directional(f, args, v, EPS), _directional(f, args, v, EPS_WIDE)
    out = []
    for a, b in zip(fine, wide):
        ok = np.all(np.isfinite(a)) and np.allclose(a, b, rtol=1e-4, atol=1e-5)
        out.append(a if ok else None)
    return out


def check_derivatives(report: Report, rng):
    prog = report.prog
    args = sample_inputs(prog, rng, "float64")
    with warnings.catch_warnings(), quiet_numpy():
        outs = execute(prog, NP, args)
    if not all(np.all(np.isfinite(o)) for o in outs):
        report.skipped.append("non-finite forward")
        return
    weights = [rng.standard_normal(np.shape(o)) for o in outs]
    v = [rng.standard_normal(a.shape) for a in args]
    argnums = tuple(range(len(args)))

    def loss_np(xs):
        return [sum(float(np.sum(w * o)) for w, o in zip(weights, execute(prog, NP, xs)))]

    def loss_gj(*xs):
        total = 0.0
        for w, o in zip(weights, execute(prog, GJ, xs)):
            total = total + (o * gj.tensor(w)).sum()
        return total

    (fd_loss,) = _smooth_fd(loss_np, args, v)
    if prog.reversible:
        grads = _attempt(report, "grad", lambda: _np(gj.grad(loss_gj, argnums)(*args)))
        with backend("interpret"):
            grads_i = _attempt(report, "grad-interpret",
                               lambda: _np(gj.grad(loss_gj, argnums)(*args)))
        eager = _attempt(report, "backward", lambda: _eager_grads(prog, args, weights))
        for what, got in (("grad jit vs interpret", grads), ("backward vs interpret", eager)):
            if got is not None and grads_i is not None:
                why = _close(got, grads_i, 1e-8, 1e-10)
                if why:
                    report.fail(what, why)
        if grads is not None and fd_loss is not None:
            analytic = sum(float(np.vdot(g, d)) for g, d in zip(grads, v))
            if not np.isclose(analytic, fd_loss[()], rtol=1e-5, atol=1e-6):
                report.fail("grad vs finite differences", f"<grad, v> = {analytic!r}, "
                            f"finite differences {float(fd_loss)!r}")
        if grads is not None:
            _check_hvp(report, loss_gj, args, v, argnums, rng)
    fd_outs = _smooth_fd(lambda xs: execute(prog, NP, xs), args, v)
    tangents = _attempt(report, "jvp", lambda: _np(gj.jvp(
        lambda *a: tuple(execute(prog, GJ, a)), tuple(args), tuple(v))[1]))
    if tangents is not None:
        for k, (t, fd) in enumerate(zip(tangents, fd_outs)):
            if fd is not None and not np.allclose(t, fd, rtol=1e-5, atol=1e-6):
                report.fail("jvp vs finite differences", f"result {k}: jvp {t}\nfd {fd}")


def _eager_grads(prog, args, weights):
    ts, outs = _eager(prog, args, requires_grad=True)
    total = 0.0
    for w, o in zip(weights, outs):
        total = total + (o * gj.tensor(w)).sum()
    total.backward()
    return [np.zeros_like(a) if t.grad is None else t.grad.numpy() for a, t in zip(args, ts)]


def _check_hvp(report, loss_gj, args, v, argnums, rng):
    """HVP (forward over reverse) against central differences of the gradient along v."""
    grad_fn = gj.grad(loss_gj, argnums)
    u = [rng.standard_normal(a.shape) for a in args]
    hvp = _attempt(report, "hvp", lambda: _np(gj.jvp(grad_fn, tuple(args), tuple(v))[1]))
    if hvp is None:
        return
    fd = _smooth_fd(lambda xs: [sum(float(np.vdot(g, w)) for g, w in
                                    zip(_np(grad_fn(*xs)), u))], args, v)[0]
    if fd is not None:
        analytic = sum(float(np.vdot(h, w)) for h, w in zip(hvp, u))
        if not np.isclose(analytic, float(fd), rtol=1e-4, atol=1e-5):
            report.fail("hvp vs finite differences", f"<Hv, u> = {analytic!r}, "
                        f"finite differences {float(fd)!r}")


def check_program(prog: Program, derivatives: bool = True) -> Report:
    report = Report(prog)
    rng = np.random.default_rng(prog.seed + 2)
    check_forward(report, sample_inputs(prog, rng))
    if derivatives and not report.failures:
        check_derivatives(report, rng)
    return report
