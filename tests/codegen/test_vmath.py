"""codegen.vmath: accuracy (ulp against numpy in float64 / longdouble), special values,
straight-line emission and loop vectorisation.

A small self-contained harness compiles, for each function and precision, a loop
`out[i] = f(in[i])` with the host target at O3 (the new pass manager) and MCJIT, and calls it on
numpy buffers through ctypes. All kernels live in one module compiled once per session.
"""

import ctypes
import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir

from codegen import vmath
from ir.primitives import FLOAT_UNARY

DTYPES = {"f32": np.float32, "f64": np.float64}
LL_TYPES = {"f32": ir.FloatType(), "f64": ir.DoubleType()}
# The reference is computed one precision up: float64 for f32, x87 long double for f64.
REF_DTYPES = {"f32": np.float64, "f64": np.longdouble}


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
    i.add_incoming(i_next, loop)
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


REFERENCE = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p,
             "tanh": np.tanh, "logistic": _logistic, "sin": np.sin, "cos": np.cos, "tan": np.tan}


def reference(fname: str, dt: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return REFERENCE[fname](x.astype(REF_DTYPES[dt]))


def ulp_errors(got: np.ndarray, want: np.ndarray, dt: str) -> np.ndarray:
    """|got - want| in units of the last place of `want` in precision dt (denormal ulp floor).

    Where want rounds to inf, 0 or nan in dt the answer must match that exactly (error 0 or inf).
    """
    fi = np.finfo(DTYPES[dt])
    rounded = want.astype(DTYPES[dt])
    exponent = np.where(want == 0, fi.minexp, np.frexp(want)[1].astype(np.int64) - 1)
    ulp = np.ldexp(want.dtype.type(1), np.maximum(exponent, fi.minexp) - fi.nmant)
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(want.dtype) - want) / ulp
    special = ~np.isfinite(rounded)
    same = (got == rounded) | (np.isnan(got) & np.isnan(rounded))
    err[special] = np.where(same[special], 0.0, np.inf)
    return err
