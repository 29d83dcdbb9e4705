"""codegen.vmath_special: ulp errors against NumPy one precision up (f64 for f32, long double
for f64), special values (signed zeros, +-inf, nan, domain ends), and loops that vectorise
without calls. The harness is test_vmath's (one JIT module per test file)."""
import ctypes
import math

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir

from codegen.vmath_special import SPECIAL
from tests.codegen.test_vmath import (DTYPES, GRADED, LL_TYPES, REF_DTYPES, bit_patterns,
                                      both_signs, emit_map_loop, host_target_machine, optimise,
                                      ulp_errors)


def emit_zip_loop(module, name, ty, fn):
    """void name(ty* a, ty* b, ty* out, i64 n): out[i] = fn(a[i], b[i])."""
    i64 = ir.IntType(64)
    func = ir.Function(module, ir.FunctionType(ir.VoidType(), [ty.as_pointer()] * 3 + [i64]),
                       name)
    a, b_, dst, n = func.args
    for arg in (a, b_, dst):
        arg.add_attribute("noalias")
    entry, loop, done = (func.append_basic_block(s) for s in ("entry", "loop", "done"))
    bld = ir.IRBuilder(entry)
    bld.cbranch(bld.icmp_signed(">", n, i64(0)), loop, done)
    bld.position_at_end(loop)
    i = bld.phi(i64)
    i.add_incoming(i64(0), entry)
    val = fn(bld, bld.load(bld.gep(a, [i])), bld.load(bld.gep(b_, [i])))
    bld.store(val, bld.gep(dst, [i]))
    i_next = bld.add(i, i64(1))
    i.add_incoming(i_next, loop)
    bld.cbranch(bld.icmp_signed("<", i_next, n), loop, done)
    bld.position_at_end(done)
    bld.ret_void()
    return func


BINARY = {"atan2"}


class Kernels:
    def __init__(self):
        tm = host_target_machine()
        module = ir.Module(name="vmath_special_test")
        for fname, fn in SPECIAL.items():
            for dt, ty in LL_TYPES.items():
                emit = emit_zip_loop if fname in BINARY else emit_map_loop
                emit(module, f"{fname}_{dt}", ty, fn)
        self.optimised = optimise(module, tm)
        self.engine = llvm.create_mcjit_compiler(self.optimised, tm)
        self.engine.finalize_object()
        p = ctypes.c_void_p
        unary = ctypes.CFUNCTYPE(None, p, p, ctypes.c_int64)
        binary = ctypes.CFUNCTYPE(None, p, p, p, ctypes.c_int64)
        self.funcs = {f.name: (binary if f.name.split("_")[0] in BINARY else unary)(
            self.engine.get_function_address(f.name)) for f in module.functions
            if not f.name.startswith("llvm.")}

    def __call__(self, fname, dt, *xs):
        xs = [np.ascontiguousarray(x, dtype=DTYPES[dt]) for x in xs]
        out = np.empty_like(xs[0])
        self.funcs[f"{fname}_{dt}"](*(x.ctypes.data for x in xs), out.ctypes.data, out.size)
        return out


@pytest.fixture(scope="module")
def kernels():
    return Kernels()


REFERENCE = {"atan": np.arctan, "asin": np.arcsin, "acos": np.arccos, "atan2": np.arctan2,
             "sinh": np.sinh, "cosh": np.cosh, "asinh": np.arcsinh, "acosh": np.arccosh,
             "atanh": np.arctanh, "log2": np.log2, "log10": np.log10, "exp2": np.exp2}


def reference(fname, dt, *xs):
    with np.errstate(all="ignore"):
        return REFERENCE[fname](*(x.astype(REF_DTYPES[dt]) for x in xs))


def sweep(fname, dt, rng):
    fi = np.finfo(DTYPES[dt])
    tiny_exp = np.log10(fi.smallest_subnormal)
    near_0 = both_signs(np.logspace(tiny_exp, 0, 100_000))
    wide = both_signs(np.logspace(tiny_exp, np.log10(fi.max), 100_000))
    big = np.log(fi.max)
    dense = {
        "atan": [np.linspace(-5, 5, 200_000), wide],
        "asin": [np.linspace(-1, 1, 300_000), near_0, 1 - np.logspace(-17, 0, 50_000)],
        "acos": [np.linspace(-1, 1, 300_000), near_0, 1 - np.logspace(-17, 0, 50_000),
                 -1 + np.logspace(-17, 0, 50_000)],
        "sinh": [np.linspace(-1.02 * big, 1.02 * big, 300_000), near_0],
        "cosh": [np.linspace(-1.02 * big, 1.02 * big, 300_000), near_0],
        "asinh": [np.linspace(-10, 10, 200_000), wide],
        "acosh": [np.linspace(1, 10, 200_000), 1 + np.logspace(-17, 0, 50_000),
                  np.logspace(0, np.log10(fi.max), 100_000)],
        "atanh": [np.linspace(-1, 1, 300_000), near_0, 1 - np.logspace(-17, 0, 50_000)],
        "log2": [np.linspace(0, 4, 200_000), np.logspace(tiny_exp, np.log10(fi.max), 100_000)],
        "log10": [np.linspace(0, 4, 200_000), np.logspace(tiny_exp, np.log10(fi.max), 100_000)],
        "exp2": [np.linspace(-1.1 * fi.maxexp - fi.nmant, 1.02 * fi.maxexp, 300_000), near_0],
    }
    return np.concatenate([np.asarray(p).astype(DTYPES[dt]) for p in dense[fname]]
                          + [bit_patterns(dt, 100_000, rng)])


# max ulp per function (measured values printed by the test; docs/numerics.md lists them)
ULP_BOUNDS = {
    "f32": dict.fromkeys(REFERENCE, 0.51),
    "f64": {"atan": 1.7, "asin": 2.8, "acos": 2.6, "atan2": 2.5, "sinh": 2.0, "cosh": 1.5,
            "asinh": 1.8, "acosh": 2.2, "atanh": 1.7, "log2": 1.8, "log10": 1.9, "exp2": 1.2},
}


def test_max_ulp_error_over_dense_sweeps(kernels):
    rng = np.random.default_rng(20261206)
    rows, failures = [], []
    for fname in SPECIAL:
        for dt in GRADED:
            if fname in BINARY:
                y, x = bit_patterns(dt, 200_000, rng), bit_patterns(dt, 200_000, rng)
                y = np.concatenate([y, rng.normal(size=200_000).astype(DTYPES[dt])])
                x = np.concatenate([x, rng.normal(size=200_000).astype(DTYPES[dt])])
                args = (y, x)
            else:
                args = (sweep(fname, dt, rng),)
            err = ulp_errors(kernels(fname, dt, *args), reference(fname, dt, *args), dt)
            worst = int(np.argmax(err))
            at = tuple(a[worst] for a in args)
            rows.append(f"{fname:6s} {dt}  max {err[worst]:.3f} ulp  at {at!r}")
            if not err[worst] <= ULP_BOUNDS[dt][fname]:
                failures.append(rows[-1])
    print("\n" + "\n".join(rows))
    assert not failures, "over the bound:\n" + "\n".join(failures) + "\nall:\n" + "\n".join(rows)


INF, NAN, PI = math.inf, math.nan, math.pi
SPECIAL_VALUES = [   # (function, args, C99 / NumPy's value)
    ("atan", (INF,), PI / 2), ("atan", (-INF,), -PI / 2), ("atan", (-0.0,), -0.0),
    ("atan", (NAN,), NAN), ("atan", (1.0,), PI / 4),
    ("asin", (1.0,), PI / 2), ("asin", (-1.0,), -PI / 2), ("asin", (-0.0,), -0.0),
    ("asin", (1.5,), NAN), ("asin", (INF,), NAN), ("asin", (NAN,), NAN),
    ("acos", (1.0,), 0.0), ("acos", (-1.0,), PI), ("acos", (0.0,), PI / 2),
    ("acos", (-1.5,), NAN), ("acos", (NAN,), NAN),
    ("atan2", (0.0, 0.0), 0.0), ("atan2", (-0.0, 0.0), -0.0), ("atan2", (0.0, -0.0), PI),
    ("atan2", (-0.0, -0.0), -PI), ("atan2", (1.0, 0.0), PI / 2), ("atan2", (-1.0, -0.0), -PI / 2),
    ("atan2", (INF, INF), PI / 4), ("atan2", (INF, -INF), 3 * PI / 4),
    ("atan2", (-INF, -INF), -3 * PI / 4), ("atan2", (1.0, INF), 0.0), ("atan2", (1.0, -INF), PI),
    ("atan2", (-1.0, -INF), -PI), ("atan2", (INF, 1.0), PI / 2), ("atan2", (NAN, 1.0), NAN),
    ("atan2", (1.0, NAN), NAN), ("atan2", (0.0, -1.0), PI), ("atan2", (NAN, 0.0), NAN),
    ("atan2", (0.0, NAN), NAN), ("atan2", (NAN, INF), NAN),
    ("sinh", (0.0,), 0.0), ("sinh", (-0.0,), -0.0), ("sinh", (INF,), INF), ("sinh", (-INF,), -INF),
    ("sinh", (NAN,), NAN), ("sinh", (1e4,), INF), ("cosh", (0.0,), 1.0), ("cosh", (-INF,), INF),
    ("cosh", (NAN,), NAN), ("cosh", (-1e4,), INF),
    ("asinh", (-0.0,), -0.0), ("asinh", (INF,), INF), ("asinh", (-INF,), -INF),
    ("asinh", (NAN,), NAN), ("acosh", (1.0,), 0.0), ("acosh", (0.5,), NAN),
    ("acosh", (-2.0,), NAN), ("acosh", (INF,), INF), ("acosh", (-INF,), NAN),
    ("atanh", (1.0,), INF), ("atanh", (-1.0,), -INF), ("atanh", (-0.0,), -0.0),
    ("atanh", (1.5,), NAN), ("atanh", (NAN,), NAN),
    ("log2", (8.0,), 3.0), ("log2", (0.0,), -INF), ("log2", (-1.0,), NAN), ("log2", (INF,), INF),
    ("log2", (0.5 ** 140,), -140.0), ("log10", (1000.0,), 3.0), ("log10", (0.0,), -INF),
    ("log10", (10.0,), 1.0), ("log10", (100.0,), 2.0), ("log10", (1e22,), 22.0),
    ("log10", (-0.0,), -INF), ("log10", (NAN,), NAN), ("log10", (1.0,), 0.0),
    ("exp2", (3.0,), 8.0), ("exp2", (-INF,), 0.0), ("exp2", (INF,), INF), ("exp2", (NAN,), NAN),
    ("exp2", (-1074.0,), 5e-324), ("exp2", (1024.0,), INF), ("exp2", (-0.0,), 1.0),
]


@pytest.mark.parametrize("dt", list(DTYPES))
def test_special_values_exactly_including_signed_zero(kernels, dt):
    wrong = []
    for fname, args, want in SPECIAL_VALUES:
        got = kernels(fname, dt, *(np.array([a]) for a in args))[0]
        want = DTYPES[dt](want) if not (dt == "f32" and want == 5e-324) else DTYPES[dt](0.0)
        same = (np.isnan(got) and np.isnan(want)) or (got == want and
                                                       np.signbit(got) == np.signbit(want))
        if not same:
            wrong.append(f"{fname}{args} = {got!r}, want {want!r}")
    assert not wrong, "\n".join(wrong)


def test_loops_vectorise_without_calls(kernels):
    text = str(kernels.optimised)
    assert "call double @atan" not in text and "@log(" not in text
    for fname in SPECIAL:
        body = text.split(f"@{fname}_f64(")[1].split("\n}")[0]
        assert "<4 x double>" in body or "<2 x double>" in body, fname
        assert not [c for c in body.split("call ")[1:] if not c.split("@")[1].startswith("llvm.")]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), fname=st.sampled_from(sorted(set(SPECIAL) - BINARY)),
       dt=st.sampled_from(GRADED))
def test_random_floats_within_bounds(kernels, data, fname, dt):
    xs = np.array(data.draw(st.lists(st.floats(width=32 if dt == "f32" else 64), min_size=1,
                                     max_size=40)), dtype=DTYPES[dt])
    err = ulp_errors(kernels(fname, dt, xs), reference(fname, dt, xs), dt)
    assert err.max() <= ULP_BOUNDS[dt][fname], (fname, dt, xs[np.argmax(err)])
