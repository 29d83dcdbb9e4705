"""The `gradjit` command line.

    gradjit demo                                   trace, differentiate, compile, check, time
    gradjit run FILE.ir [--input a.npy ...]        compile and run an IR file
    gradjit ir module.py:func --arg f32[5,8] ...   print a function's IR (--grad: the adjoint;
                                                   --fusion: the kernels; --dot: Graphviz)
    gradjit torch script.py [args]                 run a PyTorch script with torch = gradjit
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import time

import numpy as np

import gradjit as gj
from gradjit.dropin import run_script
from ir import TensorType
from ir.parser import ParseError, parse

TYPE_SPEC = re.compile(r"^(f32|f64|i32|i64|bool)\[([0-9, ]*)\]$")


def parse_type(spec: str):
    """'f32[5,8]' -> TensorType('f32', (5, 8)); 'f64[]' is a scalar."""
    m = TYPE_SPEC.match(spec.strip())
    if not m:
        raise argparse.ArgumentTypeError(
            f"bad type {spec!r}: expected a dtype (f32, f64, i32, i64, bool) and a shape, "
            "e.g. f32[5,8] or f64[]")
    dims = [d for d in m.group(2).replace(" ", "").split(",") if d]
    return TensorType(m.group(1), tuple(int(d) for d in dims))


def random_array(t, rng: np.random.Generator) -> np.ndarray:
    """Seeded sample of type t: normal floats, small non-negative ints, fair bools."""
    if t.dtype in ("f32", "f64"):
        return rng.standard_normal(t.shape).astype(t.np_dtype)
    if t.dtype == "bool":
        return rng.random(t.shape) < 0.5
    return rng.integers(0, 4, t.shape).astype(t.np_dtype)


# ---- demo --------------------------------------------------------------------------------

def _demo_loss(gj):
    def loss(w, x):
        return (gj.tanh(x @ w) ** 2).mean()
    return loss


def _finite_differences(f, w: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of scalar f at w (float64)."""
    out = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[i] = eps
        out[i] = (float(f(w + step)) - float(f(w - step))) / (2 * eps)
    return out


def demo(args) -> int:
    loss = _demo_loss(gj)
    rng = np.random.default_rng(args.seed)
    w = rng.random((8, 3)).astype(np.float32)
    x = rng.random((5, 8)).astype(np.float32)
    print("# loss(w, x) = (tanh(x @ w) ** 2).mean()\n")
    print("# the traced IR")
    print(gj.make_ir(loss)(w, x))
    print("# the adjoint IR (forward + backward, fused and optimised)")
    print(gj.make_ir(gj.grad(loss))(w, x))
    grad_fn = gj.grad(loss)
    start = time.perf_counter()
    g = np.asarray(grad_fn(w, x))
    cold = time.perf_counter() - start
    print(f"# grad(loss)(w, x), f32:\n{g}\n")
    calls = 200
    start = time.perf_counter()
    for _ in range(calls):
        grad_fn(w, x)
    cached = (time.perf_counter() - start) / calls
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    g64 = np.asarray(gj.grad(loss)(w64, x64))
    forward = gj.jit(loss)
    fd = _finite_differences(lambda v: forward(v, x64), w64)
    err = float(np.abs(g64 - fd).max())
    print(f"gradient check (float64, central differences): max abs error {err:.3e}")
    print(f"cold call (trace + optimise + compile + run): {cold * 1e3:.1f} ms")
    print(f"cached call: {cached * 1e6:.1f} us")
    return 0 if err < 1e-6 else 1


# ---- run -----------------------------------------------------------------------------------

def run(args) -> int:
    with open(args.file, encoding="utf-8") as fh:
        fn = parse(fh.read())
    if args.input:
        if len(args.input) != len(fn.params):
            print(f"gradjit run: @{fn.name} takes {len(fn.params)} inputs, got "
                  f"{len(args.input)} --input files", file=sys.stderr)
            return 2
        inputs = [np.load(path) for path in args.input]
    else:
        rng = np.random.default_rng(args.seed)
        inputs = [random_array(p.type, rng) for p in fn.params]
    outs = gj.run_ir(fn, *inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    print(f"@{fn.name}: {len(fn.params)} input(s), {len(outs)} result(s)")
    for i, (arr, t) in enumerate(zip(inputs, fn.param_types)):
        print(f"input {i}: {t}\n{np.array2string(np.asarray(arr), precision=6)}")
    for i, (arr, t) in enumerate(zip(outs, fn.result_types)):
        print(f"result {i}: {t}\n{np.array2string(np.asarray(arr), precision=6)}")
    return 0


# ---- ir --------------------------------------------------------------------------------------

def load_function(target: str):
    """'path/to/module.py:func' -> the function object (the module is imported from its path)."""
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise ValueError(f"expected MODULE.py:FUNCTION, got {target!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    mod_name = "gradjit_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise AttributeError(f"{path} has no function {name!r}")
    return fn


def show_ir(args) -> int:
    fn = load_function(args.target)
    rng = np.random.default_rng(args.seed)
    inputs = [random_array(t, rng) for t in args.arg]
    f = gj.grad(fn, argnums=tuple(args.argnums) if args.argnums else 0) if args.grad else fn
    if args.fusion:
        staged = f if args.grad else gj.jit(fn)
        report = staged.lower(*inputs).fusion_report()
        print(report.to_dot() if args.dot else f"{report}\n", end="")
    elif args.dot:
        print(gj.make_ir(f)(*inputs).to_dot(), end="")
    else:
        print(gj.make_ir(f)(*inputs), end="")
    return 0


# ---- entry point -----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gradjit", description="gradjit: trace, differentiate "
                                "and compile Python tensor code to native code.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="trace, differentiate, compile and check an example")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(handler=demo)
    r = sub.add_parser("run", help="compile and run an IR file")
    r.add_argument("file", help="a .ir file (printed gradjit IR)")
    r.add_argument("--input", action="append", metavar="A.npy",
                   help="a .npy file per parameter, in order (default: seeded random)")
    r.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    r.set_defaults(handler=run)
    i = sub.add_parser("ir", help="print the IR of a Python function")
    i.add_argument("target", help="MODULE.py:FUNCTION")
    i.add_argument("--arg", action="append", type=parse_type, default=[], metavar="TYPE",
                   help="an argument type such as f32[5,8] (one per argument, in order)")
    i.add_argument("--grad", action="store_true", help="print the gradient's (adjoint) IR")
    i.add_argument("--argnums", type=int, action="append",
                   help="with --grad: differentiate with respect to these arguments")
    i.add_argument("--fusion", action="store_true",
                   help="print the fusion report: the kernels and what each holds")
    i.add_argument("--dot", action="store_true",
                   help="print Graphviz DOT instead of text (with --fusion: kernels as clusters)")
    i.add_argument("--seed", type=int, default=0)
    i.set_defaults(handler=show_ir)
    t = sub.add_parser("torch", help="run an unmodified PyTorch script with torch = gradjit")
    t.add_argument("script", help="a Python file that imports torch")
    t.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    t.set_defaults(handler=run_torch)
    return p


def run_torch(args) -> int:
    run_script(args.script, args.args)
    return 0


def main(argv=None) -> int:
    """Runs the command line; returns the exit status (errors print one line to stderr)."""
    args = build_parser().parse_args(argv)
    if args.command == "torch":        # the script's own errors keep their tracebacks
        return args.handler(args)
    try:
        return args.handler(args)
    except (OSError, ValueError, TypeError, AttributeError, ParseError) as e:
        print(f"gradjit {args.command}: error: {e}", file=sys.stderr)
        return 1
