"""codegen.vmath: accuracy (ulp against numpy in float64 / longdouble), special values,
straight-line emission and loop vectorisation.

A small self-contained harness compiles, for each function and precision, a loop
`out[i] = f(in[i])` with the host target at O3 (the new pass manager) and MCJIT, and calls it on
numpy buffers through ctypes. All kernels live in one module, compiled once for this file.
"""

import ctypes
import math
import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir

from codegen import vmath, vmath_base, vmath_constants, vmath_trig
from ir.primitives import FLOAT_UNARY

DTYPES = {"f32": np.float32, "f64": np.float64}
LL_TYPES = {"f32": ir.FloatType(), "f64": ir.DoubleType()}
# The reference is computed one precision up: float64 for f32, x87 long double for f64.
REF_DTYPES = {"f32": np.float64, "f64": np.longdouble}
# Where long double is just double (MSVC, some ARM ABIs) f64 results cannot be graded in ulps.
GRADED = [dt for dt in DTYPES if dt == "f32" or np.finfo(np.longdouble).nmant >= 63]


# ---- harness ---------------------------------------------------------------------------------

def host_target_machine() -> llvm.TargetMachine:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(), opt=3)


def emit_map_loop(module: ir.Module, name: str, ty: ir.Type, fn) -> ir.Function:
    """void name(ty* noalias in, ty* noalias out, i64 n): out[i] = fn(in[i]) for i < n."""
    i64 = ir.IntType(64)
    func = ir.Function(module, ir.FunctionType(ir.VoidType(), [ty.as_pointer()] * 2 + [i64]), name)
    src, dst, n = func.args
    src.add_attribute("noalias")
    dst.add_attribute("noalias")
    entry, loop, done = (func.append_basic_block(s) for s in ("entry", "loop", "done"))
    bld = ir.IRBuilder(entry)
    bld.cbranch(bld.icmp_signed(">", n, i64(0)), loop, done)
    bld.position_at_end(loop)
    i = bld.phi(i64)
    i.add_incoming(i64(0), entry)
    bld.store(fn(bld, bld.load(bld.gep(src, [i]))), bld.gep(dst, [i]))
    i_next = bld.add(i, i64(1))
    i.add_incoming(i_next, bld.block)         # the body may branch (trig's rare path)
    bld.cbranch(bld.icmp_signed("<", i_next, n), loop, done)
    bld.position_at_end(done)
    bld.ret_void()
    return func


def optimise(module: ir.Module, tm: llvm.TargetMachine) -> llvm.ModuleRef:
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    mod = llvm.parse_assembly(str(module))
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return mod


class Kernels:
    """Every vmath function in both precisions, JIT-compiled into one engine."""

    def __init__(self):
        tm = host_target_machine()
        module = ir.Module(name="vmath_test")
        for fname, fn in vmath.VMATH.items():
            for dt, ty in LL_TYPES.items():
                emit_map_loop(module, f"{fname}_{dt}", ty, fn)
        self.optimised = optimise(module, tm)
        self.engine = llvm.create_mcjit_compiler(self.optimised, tm)
        self.engine.finalize_object()
        proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
        self.funcs = {name: proto(self.engine.get_function_address(name))
                      for name in (f.name for f in module.functions)}

    def __call__(self, fname: str, dt: str, x) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=DTYPES[dt])
        out = np.empty_like(x)
        self.funcs[f"{fname}_{dt}"](x.ctypes.data, out.ctypes.data, x.size)
        return out


@pytest.fixture(scope="module")
def kernels() -> Kernels:
    return Kernels()


# ---- references and ulp errors ----------------------------------------------------------------

def _logistic(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _erf_long(x: np.ndarray) -> np.ndarray:
    """erf in long double: 2/sqrt(pi) e^-x^2 sum 2^n x^(2n+1) / (2n+1)!!, a series of positive
    terms (no cancellation); +-1 from |x| = 6.5 on, where erf rounds to 1 in f64."""
    a = np.minimum(np.abs(x), np.longdouble(6.5))
    term, total, a2 = a.copy(), np.zeros_like(a), a * a
    for n in range(1, 200):                       # the terms peak near n = a^2 = 42, then fall
        total += term
        term = term * 2 * a2 / (2 * n + 1)
    pi = np.longdouble(np.pi) + np.longdouble(1.2246467991473532e-16)
    y = np.where(np.abs(x) >= 6.5, 1, 2 / np.sqrt(pi) * np.exp(-a2) * total)
    return np.where(np.isnan(x), np.nan, np.copysign(y, x))


def _erf(x: np.ndarray) -> np.ndarray:
    """math.erf (NumPy has no erf) for the f32 grading; the long double series for f64."""
    if x.dtype == np.longdouble:
        return _erf_long(x)
    return np.vectorize(math.erf, otypes=[np.float64])(x)


REFERENCE = {"erf": _erf, "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p,
             "tanh": np.tanh, "logistic": _logistic, "sin": np.sin, "cos": np.cos, "tan": np.tan}


def reference(fname: str, dt: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return REFERENCE[fname](x.astype(REF_DTYPES[dt]))


def ulp_errors(got: np.ndarray, want: np.ndarray, dt: str) -> np.ndarray:
    """|got - want| in units of the last place of `want` in precision dt (denormal ulp floor).

    Where want rounds to inf, 0 or nan in dt the answer must match that exactly (error 0 or inf).
    """
    fi = np.finfo(DTYPES[dt])
    with np.errstate(over="ignore"):
        rounded = want.astype(DTYPES[dt])
    exponent = np.where(want == 0, fi.minexp, np.frexp(want)[1].astype(np.int64) - 1)
    ulp = np.ldexp(want.dtype.type(1), np.maximum(exponent, fi.minexp) - fi.nmant)
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(want.dtype) - want) / ulp
    special = ~np.isfinite(rounded)
    same = (got == rounded) | (np.isnan(got) & np.isnan(rounded))
    err[special] = np.where(same[special], 0.0, np.inf)
    return err


# ---- inputs -------------------------------------------------------------------------------

def bit_patterns(dt: str, n: int, rng) -> np.ndarray:
    """Uniformly random bit patterns: every binade (denormals, huge, inf, nan) equally likely."""
    width = np.dtype(DTYPES[dt]).itemsize * 8
    return rng.integers(0, 2 ** width, n, dtype=f"uint{width}").view(DTYPES[dt])


def both_signs(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, -x])


def sweep(fname: str, dt: str, rng) -> np.ndarray:
    """Dense inputs over the whole domain of fname, plus random bit patterns."""
    big = np.log(np.finfo(DTYPES[dt]).max)                  # 88.7 / 709.8
    tiny_exp = np.log10(np.finfo(DTYPES[dt]).smallest_subnormal)
    near_0 = both_signs(np.logspace(tiny_exp, 0, 100_000))          # denormals to 1
    dense = {
        "exp": [np.linspace(-1.2 * big, 1.02 * big, 400_000)],
        "expm1": [np.linspace(-60, 1.02 * big, 200_000), near_0],
        "log": [np.linspace(0, 4, 200_000), np.logspace(tiny_exp, 38, 100_000)],
        "log1p": [np.linspace(-1, 4, 200_000), near_0],
        "tanh": [np.linspace(-25, 25, 300_000), near_0],
        "logistic": [np.linspace(-1.2 * big, 1.2 * big, 300_000), np.linspace(-20, 20, 100_000)],
        "erf": [np.linspace(-7, 7, 400_000), near_0],
    }
    if fname in dense:
        parts = dense[fname] + [bit_patterns(dt, 200_000, rng)]
    else:          # sin, cos, tan: the fast path's range densely, then up to the largest float
        limit = vmath_trig.TRIG_ACCURATE_LIMIT["f64" if fname == "tan" else dt]
        top = np.log10(float(np.finfo(DTYPES[dt]).max)) - 1e-9   # 10^top rounds below the max
        parts = [np.linspace(-10, 10, 200_000), rng.uniform(-1e5, 1e5, 200_000),
                 both_signs(np.logspace(tiny_exp, np.log10(limit), 100_000)),
                 both_signs(np.logspace(np.log10(limit), top, 100_000)),
                 near_multiples_of_half_pi(dt, min(limit, 1e6), rng)]
    return np.concatenate([np.asarray(p).astype(DTYPES[dt]) for p in parts])


def near_multiples_of_half_pi(dt: str, limit: float, rng) -> np.ndarray:
    """The floats around k*pi/2 (k*pi/2 in long double), where range reduction cancels most."""
    k = np.concatenate([np.arange(1, 5000), rng.integers(1, int(limit / 1.6), 20_000)])
    nearest = (k * (np.longdouble(np.pi) + np.longdouble(1.2246467991473532e-16)) / 2)
    nearest = nearest.astype(DTYPES[dt])
    inf = DTYPES[dt](np.inf)
    return both_signs(np.concatenate([nearest, np.nextafter(nearest, inf),
                                      np.nextafter(nearest, -inf)]))


# ---- tests --------------------------------------------------------------------------------

def test_table_covers_the_float_primitives_llvm_cannot_vectorise():
    # sqrt and rsqrt lower to llvm.sqrt, which vectorises; the rest need vmath.
    assert set(vmath.VMATH) == set(FLOAT_UNARY) - {"sqrt", "rsqrt"}


# Max ulp allowed per function and precision; the measured values are printed by the test.
# f32 bounds hold over all 2^32 inputs (checked once, exhaustively, before trig's rare path; sin
# and cos pass 1.5 ulp only below 1.3e5). sin, cos, tan beyond TRIG_ACCURATE_LIMIT (the rare
# path, dense sweeps to the largest float): f32 sin 0.83, cos 0.5, tan 0.5; f64 against long
# double sin 0.72, cos 0.72, tan 1.9 (tests/numerics/test_trig_range.py has the details).
ULP_BOUNDS = {
    "f32": {"erf": 0.51, "exp": 1.5, "expm1": 1.5, "log": 1.0, "log1p": 1.0, "tanh": 1.5,
            "logistic": 1.6,
            "sin": 2.0, "cos": 2.0, "tan": 0.51},
    "f64": {"erf": 1.0, "exp": 1.5, "expm1": 1.5, "log": 1.0, "log1p": 1.0, "tanh": 1.5,
            "logistic": 1.6,
            "sin": 1.5, "cos": 1.5, "tan": 3.5},
}


def test_max_ulp_error_over_dense_sweeps(kernels):
    rng = np.random.default_rng(20240601)
    rows, failures = [], []
    for fname in vmath.VMATH:
        for dt in GRADED:
            x = sweep(fname, dt, rng)
            err = ulp_errors(kernels(fname, dt, x), reference(fname, dt, x), dt)
            worst = int(np.argmax(err))
            rows.append(f"{fname:9s} {dt}  max {err[worst]:.3f} ulp  at x={x[worst]!r}  "
                        f"({x.size} points)")
            if not err[worst] <= ULP_BOUNDS[dt][fname]:
                failures.append(rows[-1])
    print("\n" + "\n".join(rows))
    assert not failures, "over the bound:\n" + "\n".join(failures) + "\nall:\n" + "\n".join(rows)


INF, NAN = float("inf"), float("nan")
SPECIAL_VALUES = [
    ("exp", -INF, 0.0), ("exp", INF, INF), ("exp", NAN, NAN), ("exp", 1e4, INF),
    ("exp", -1e4, 0.0), ("exp", 0.0, 1.0), ("exp", -0.0, 1.0),
    ("expm1", -INF, -1.0), ("expm1", INF, INF), ("expm1", NAN, NAN), ("expm1", -1e4, -1.0),
    ("expm1", 1e4, INF), ("expm1", 0.0, 0.0), ("expm1", -0.0, -0.0),
    ("log", 0.0, -INF), ("log", -0.0, -INF), ("log", -1.0, NAN), ("log", -INF, NAN),
    ("log", INF, INF), ("log", NAN, NAN), ("log", 1.0, 0.0),
    ("log1p", -1.0, -INF), ("log1p", -2.0, NAN), ("log1p", -INF, NAN), ("log1p", INF, INF),
    ("log1p", NAN, NAN), ("log1p", 0.0, 0.0), ("log1p", -0.0, -0.0),
    ("tanh", INF, 1.0), ("tanh", -INF, -1.0), ("tanh", 1e30, 1.0), ("tanh", -1e30, -1.0),
    ("tanh", 40.0, 1.0), ("tanh", NAN, NAN), ("tanh", 0.0, 0.0), ("tanh", -0.0, -0.0),
    ("logistic", INF, 1.0), ("logistic", -INF, 0.0), ("logistic", 1e30, 1.0),
    ("logistic", -1e30, 0.0), ("logistic", 0.0, 0.5), ("logistic", NAN, NAN),
    ("sin", INF, NAN), ("sin", -INF, NAN), ("sin", NAN, NAN), ("sin", 0.0, 0.0),
    ("sin", -0.0, -0.0), ("cos", INF, NAN), ("cos", -INF, NAN), ("cos", NAN, NAN),
    ("cos", 0.0, 1.0), ("cos", -0.0, 1.0), ("tan", INF, NAN), ("tan", -INF, NAN),
    ("tan", NAN, NAN), ("tan", 0.0, 0.0), ("tan", -0.0, -0.0),
    ("erf", INF, 1.0), ("erf", -INF, -1.0), ("erf", NAN, NAN), ("erf", 0.0, 0.0),
    ("erf", -0.0, -0.0), ("erf", 6.0, 1.0), ("erf", -1e30, -1.0),
]


@pytest.mark.parametrize("dt", DTYPES)
def test_special_values_exactly_including_signed_zero(kernels, dt):
    wrong = []
    for fname, x, want in SPECIAL_VALUES:
        got = kernels(fname, dt, [x])[0]
        same = np.isnan(got) if np.isnan(want) else (got == want and
                                                     np.signbit(got) == np.signbit(want))
        if not same:
            wrong.append(f"{fname}({x}) = {got!r}, want {want!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("dt", GRADED)
def test_denormals(kernels, dt):
    fi = np.finfo(DTYPES[dt])
    d = np.array([fi.smallest_subnormal, 3 * fi.smallest_subnormal, fi.tiny / 2], DTYPES[dt])
    # Functions with f(x) = x + O(x^2) give x itself.
    for fname in ("expm1", "log1p", "tanh", "sin", "tan"):
        np.testing.assert_array_equal(kernels(fname, dt, both_signs(d)), both_signs(d), fname)
    assert (kernels("logistic", dt, d) == 0.5).all()
    assert (kernels("cos", dt, d) == 1.0).all()
    # log of denormals, and exp into the denormals, within 1 ulp (of a denormal: absolute).
    assert ulp_errors(kernels("log", dt, d), reference("log", dt, d), dt).max() <= 1.0
    x = np.log(d.astype(np.float64)).astype(DTYPES[dt])
    assert ulp_errors(kernels("exp", dt, x), reference("exp", dt, x), dt).max() <= 1.0


@pytest.mark.parametrize("dt", GRADED)
@pytest.mark.parametrize("fname", ["sin", "cos", "tan"])
def test_trig_rare_path_lane_by_lane(kernels, fname, dt):
    """One huge element at each position of a 67-element array (every lane of the vector loop
    and the scalar remainder), the rest small: each takes its own path, graded in ulps, and
    the boundary of the fast path's range on both sides."""
    rng = np.random.default_rng(7)
    n, top = 67, np.log10(float(np.finfo(DTYPES[dt]).max)) - 1e-9
    small = rng.uniform(-3, 3, n).astype(DTYPES[dt])
    huge = both_signs(10 ** rng.uniform(7, top, n))[rng.permutation(2 * n)[:n]].astype(DTYPES[dt])
    for k in range(n):
        x = small.copy()
        x[k] = huge[k]
        err = ulp_errors(kernels(fname, dt, x), reference(fname, dt, x), dt)
        assert err.max() <= ULP_BOUNDS[dt][fname], (k, x[np.argmax(err)])
    limit = DTYPES[dt](vmath_trig.TRIG_ACCURATE_LIMIT["f64" if fname == "tan" else dt])
    edge = both_signs(np.array([np.nextafter(limit, DTYPES[dt](0)), limit,
                                np.nextafter(limit, DTYPES[dt](np.inf))], DTYPES[dt]))
    err = ulp_errors(kernels(fname, dt, edge), reference(fname, dt, edge), dt)
    assert err.max() <= ULP_BOUNDS[dt][fname], edge[np.argmax(err)]


def test_trig_fixed_width_variant_off_x86(monkeypatch):
    """Where scalable vectors exist (AArch64 SVE) the rare path declares a defined 64-lane
    variant instead of a scalable declaration: forced here, loops still vectorise, the call
    is still scalarised per lane, and the variant itself computes the right values."""
    monkeypatch.setattr(vmath_trig, "SCALABLE_VARIANT", False)
    module = ir.Module(name="fixed")
    emit_map_loop(module, "sin_f64", ir.DoubleType(), vmath_trig.sin)
    text = str(optimise(module, host_target_machine()))
    assert "<vscale" not in text and "gradjit_sin_huge_f64_m64" in text
    body = function_bodies(text)["sin_f64"]
    assert re.search(r"<\d+ x double>", body) and "_m64(" not in body
    variant = ir.Module(name="variant")
    fn = vmath_trig._huge_entry(variant, vmath_trig.SIN)
    wrap = ir.Function(variant, ir.FunctionType(ir.VoidType(), [ir.PointerType()] * 2), "run")
    bld = ir.IRBuilder(wrap.append_basic_block("entry"))
    vec = ir.VectorType(ir.DoubleType(), 64)
    x_vec = bld.load(wrap.args[0], typ=vec, align=8)        # numpy's alignment, not 512
    mask = bld.fcmp_ordered(">", x_vec, ir.Constant(vec, [0.0] * 64))
    bld.store(bld.call(variant.globals[fn.name + "_m64"], [x_vec, mask]), wrap.args[1], align=8)
    bld.ret_void()
    tm = host_target_machine()
    engine = llvm.create_mcjit_compiler(optimise(variant, tm), tm)
    engine.finalize_object()
    proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
    run = proto(engine.get_function_address("run"))
    x = np.where(np.arange(64) % 3 == 0, -1.0, 10 ** np.linspace(16, 300, 64))
    y = np.full(64, 7.0)
    run(x.ctypes.data, y.ctypes.data)
    assert (y[x < 0] == 0).all()                           # masked-off lanes: zero, untouched
    assert (np.abs(y[x > 0] - np.sin(x[x > 0])) <= np.spacing(1.0)).all()


ALLOWED_CALLS = {"llvm.fma", "llvm.fabs", "llvm.rint", "llvm.copysign"}
TRIG = {"sin", "cos", "tan"}


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("fname", list(vmath.VMATH))
def test_emits_straight_line_code_of_the_argument_type(fname, dt):
    ty = LL_TYPES[dt]
    module = ir.Module(name="one")
    func = ir.Function(module, ir.FunctionType(ty, [ty]), "f")
    bld = ir.IRBuilder(func.append_basic_block("entry"))
    y = vmath.VMATH[fname](bld, func.args[0])
    bld.ret(y)
    assert y.type == ty
    blocks = {b.name: b for b in func.blocks}
    if fname in TRIG:       # the fast path, then one branch around the call of the rare path
        assert list(blocks) == ["entry", "trig.huge", "trig.join"]
        *straight, branch = blocks["entry"].instructions
        assert branch.opname == "br" and "!prof" in str(branch)
        cold = [i.callee.name for i in blocks["trig.huge"].instructions
                if isinstance(i, ir.CallInstr)]
        assert cold == [f"gradjit_{fname}_huge_f64"]
        straight += blocks["trig.join"].instructions[1:]
    else:
        assert list(blocks) == ["entry"]
        straight = blocks["entry"].instructions
    for instr in straight:
        # fptosi of nan or huge values is poison; the bit-level integer path avoids it.
        assert instr.opname not in ("br", "switch", "phi", "fptosi", "fptoui"), str(instr)
        if isinstance(instr, ir.CallInstr):
            assert instr.callee.name.rsplit(".", 1)[0] in ALLOWED_CALLS, str(instr)
    llvm.parse_assembly(str(module)).verify()


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("fname", ["sin", "cos"])
def test_trig_in_range_is_straight_line(fname, dt):
    """in_range=True (lgamma's sin(pi r)): the fast path alone, no branch, no call."""
    ty = LL_TYPES[dt]
    module = ir.Module(name="one")
    func = ir.Function(module, ir.FunctionType(ty, [ty]), "f")
    bld = ir.IRBuilder(func.append_basic_block("entry"))
    bld.ret(getattr(vmath_trig, fname)(bld, func.args[0], in_range=True))
    assert len(func.blocks) == 1 and list(module.functions) == [func] + [
        f for f in module.functions if f.name.startswith("llvm.")]


def test_rejects_non_float_values():
    func = ir.Function(ir.Module(), ir.FunctionType(ir.IntType(32), [ir.IntType(32)]), "g")
    bld = ir.IRBuilder(func.append_basic_block())
    with pytest.raises(TypeError, match="float or double"):
        vmath.exp(bld, func.args[0])


def function_bodies(llvm_ir: str) -> dict[str, str]:
    """Optimised LLVM IR text cut into function definitions, by name."""
    bodies = {}
    for chunk in llvm_ir.split("\ndefine ")[1:]:
        name = re.search(r'@"?([\w.]+)"?\(', chunk).group(1)
        bodies[name] = chunk.split("\n}\n")[0]
    return bodies


def test_every_loop_vectorises_without_calls(kernels):
    # The width is the CPU cost model's choice (f32 tan: 8 lanes on Skylake-AVX512, 4 on
    # Zen 3), so only a vector loop of at least SSE width (16 bytes) is guaranteed on x86-64.
    min_bytes = 16
    bodies = function_bodies(str(kernels.optimised))
    for fname in vmath.VMATH:
        for dt, scalar in (("f32", "float"), ("f64", "double")):
            body = bodies[f"{fname}_{dt}"]
            lanes = [int(n) for n in re.findall(rf"<(\d+) x {scalar}>", body)]
            assert lanes and max(lanes) * int(dt[1:]) // 8 >= min_bytes, (fname, dt, lanes)
            calls = re.findall(r"call [^@]*@(?!llvm\.)([\w.]+)", body)
            # trig's rare path: a scalar call per lane, each in a block of its own that is
            # entered only when that lane is beyond the fast path's range
            assert set(calls) <= ({f"gradjit_{fname}_huge_f64"} if fname in TRIG else set())
            for block in body.split("\n\n"):
                if "call" in block and "@gradjit_" in block:
                    assert block.startswith(("pred.call.if", "trig.huge")), block[:200]


def test_exp_loop_vectorises_to_avx_width():
    if "+avx2" not in llvm.get_host_cpu_features().flatten():
        pytest.skip("host has no AVX2")
    module = ir.Module(name="exp_loop")
    emit_map_loop(module, "exp_f32", ir.FloatType(), vmath.exp)
    text = str(optimise(module, host_target_machine()))
    assert "<8 x float>" in text or "<16 x float>" in text
    assert "fmul <8 x float>" in text or "fmul <16 x float>" in text


@settings(max_examples=60, deadline=None)
@given(data=st.data(), fname=st.sampled_from(list(vmath.VMATH)), dt=st.sampled_from(GRADED))
def test_random_floats_within_bounds(kernels, data, fname, dt):
    width = 32 if dt == "f32" else 64
    x = np.array(data.draw(st.lists(st.floats(width=width), min_size=1, max_size=32)), DTYPES[dt])
    got = kernels(fname, dt, x)
    assert ulp_errors(got, reference(fname, dt, x), dt).max(initial=0) <= ULP_BOUNDS[dt][fname]


@pytest.mark.skipif("f64" not in GRADED, reason="long double is double here")
def test_erf_references_agree():
    """The f64 reference (a long double series) and math.erf differ by at most math.erf's
    own error (glibc documents 1 ulp), so the series is right where it grades vmath."""
    x = np.concatenate([np.linspace(-7, 7, 20_001), np.logspace(-300, 0.8, 2_000)])
    got = np.vectorize(math.erf)(x)
    assert ulp_errors(got, _erf_long(x.astype(np.longdouble)), "f64").max() <= 1.0


def test_erf_constants_are_truncated_below_half_an_ulp():
    """The first Chebyshev coefficient left out of erf's g, times e^-x^2 at the start of its
    interval, is below 2^-56 (an eighth of an ulp of erf there)."""
    from fractions import Fraction
    coeffs = vmath.erfc_scaled_chebyshev(Fraction(vmath.ERF_MID), Fraction(vmath.ERF_ONE), 40)
    n_g = vmath.ERF_TERMS[2]
    assert abs(float(coeffs[n_g])) * math.exp(-vmath.ERF_MID ** 2) < 2.0 ** -56
    # interpolation at 40 points: the coefficients kept are converged far beyond f64
    assert abs(float(coeffs[-1])) < 1e-24


def _table_text(name: str, fmt) -> str:
    """The source of one entry of codegen/vmath_constants.py (to paste when it is stale)."""
    fields = "".join(f"    {k}={v!r},\n" for k, v in zip(fmt._fields, fmt._values()))
    return f"{name} = dict(\n{fields})"


@pytest.mark.parametrize("name", ["F32", "F64"])
def test_constant_table_is_what_exact_arithmetic_gives(name):
    # codegen/vmath_constants.py is derived by _make_format: after a change to a degree, a
    # field or a coefficient, paste the text this failure prints (wrapped to 100 columns)
    derived = vmath_base._make_format(**vmath_constants.FORMAT_ARGS[name])
    table = vmath_base._Format(**getattr(vmath_constants, name))
    assert derived == table, _table_text(name, derived)
    assert derived.tanh_num and derived.sin_s and derived.expm1_q


# Max relative error of 1 + r + r^2 Q(r) against e^r on the reduced interval: exp's fitted (f32)
# and economised (f64) Q must beat the Taylor series they replaced (f32 6 terms 7.4e-9, f64 13
# terms 6.9e-19; vmath_constants.py) with fewer terms.
EXP_Q_BOUNDS = {"f32": (5, 5e-9), "f64": (11, 6e-19)}


@pytest.mark.parametrize("dt", GRADED)
def test_exp_polynomial_beats_the_taylor_series_it_replaced(dt):
    fmt = vmath_base._F32 if dt == "f32" else vmath_base._F64
    terms, bound = EXP_Q_BOUNDS[dt]
    assert len(fmt.exp_q) == terms
    r = np.linspace(-1, 1, 200001).astype(np.longdouble) * float(vmath_base.EXP_REDUCED)
    q = np.zeros_like(r)
    for c in reversed(fmt.exp_q):
        q = q * r + np.longdouble(c)
    rel = np.abs(1 + r + r * r * q - np.exp(r)) / np.exp(r)
    assert rel.max() < bound, rel.max()
