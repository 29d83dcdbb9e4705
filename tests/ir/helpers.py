"""What the pass tests share: building small Functions, sampling inputs (nan, inf and signed
zeros included), comparing two programs on the reference interpreter, and running a pass
while checking it neither mutates its input nor breaks the IR."""
import numpy as np

from ir import Builder, Function, TensorType, Value, walk_ops
from ir.interpret import interpret
from ir.printer import print_function
from ir.verify import verify

SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -2.5, 3.0]


def make_fn(types, body, hints="xyzw") -> Function:
    """@f with params of types ((dtype, shape) pairs) named by hints; body(b, *params)."""
    params = [Value(TensorType(d, s), h) for (d, s), h in zip(types, hints)]
    b = Builder()
    out = body(b, *params)
    return Function("f", params, b.ops, list(out) if isinstance(out, (list, tuple)) else [out])


def sample(fn: Function, special: bool = False, seed: int = 0) -> list[np.ndarray]:
    """Random inputs for fn; special=True mixes in nan, inf and signed zeros."""
    rng = np.random.default_rng(seed)
    args = []
    for t in fn.param_types:
        if t.dtype == "bool":
            a = rng.random(t.shape) < 0.5
        elif t.dtype in ("i32", "i64"):
            a = rng.integers(-5, 6, t.shape)
        else:
            a = rng.normal(size=t.shape) * 2
            if special:
                a = rng.choice(SPECIAL, size=t.shape)
        args.append(np.asarray(a, dtype=t.np_dtype))
    return args


def unsigned_zeros(fn: Function) -> Function:
    """fn computing with every -0.0 read as +0.0: `x + 0.0` after each float parameter and
    op result, regions included (x + 0.0 is x for every other x, nan and inf too).

    The optimizer is exact but for the sign of zeros (x + 0.0 -> x, as XLA does), and a sign
    of zero can decide the sign of an infinity downstream (1 / -0.0). Two programs that
    agree once zeros are unsigned differ by that exception only."""
    b = Builder()
    env = {}

    def unsign(old: Value, new: Value):
        zero = b.const(0, new.dtype, new.shape) if new.dtype in ("f32", "f64") else None
        env[old] = new if zero is None else b.add(new, zero)
    params = [Value(p.type, p.name_hint) for p in fn.params]
    for old, new in zip(fn.params, params):
        unsign(old, new)
    for op in fn.body:
        regions = tuple(unsigned_zeros(r) for r in op.regions)
        out = b.emit(op.prim, *(env[v] for v in op.inputs), regions=regions, **op.params)
        for old, new in zip(op.results, out if isinstance(out, tuple) else (out,)):
            unsign(old, new)
    return Function(fn.name, params, b.ops, [env[r] for r in fn.results])


def assert_same_results(fn: Function, opt: Function, special: bool = False,
                        signed_zeros: bool = True, rtol: float = 1e-6):
    """fn and opt agree on two random inputs (allclose, nan equal to nan); with
    signed_zeros=False they only need to agree once every -0.0 is read as +0.0."""
    run_fn, run_opt = (fn, opt) if signed_zeros else (unsigned_zeros(fn), unsigned_zeros(opt))
    for seed in range(2):
        args = sample(fn, special, seed)
        want, got = interpret(run_fn, *args), interpret(run_opt, *args)
        for w, g in zip(want, got, strict=True):
            assert (w.dtype, w.shape) == (g.dtype, g.shape)
            np.testing.assert_allclose(g, w, rtol=rtol, atol=0, equal_nan=True,
                                       err_msg=_programs_and_args(fn, opt, args))


def _programs_and_args(fn: Function, opt: Function, args) -> str:
    """The failure context: both programs as text and the inputs that told them apart."""
    shown = "\n".join(f"  {p.type}: {a.tolist()}" for p, a in zip(fn.params, args))
    return (f"\n--- before ---\n{print_function(fn)}--- after ---\n{print_function(opt)}"
            f"--- inputs ---\n{shown}")


def snapshot(fn: Function):
    """Everything a pass must leave as it was in its input."""
    return (print_function(fn), [id(op) for op in walk_ops(fn)],
            [(op.inputs, op.results, dict(op.params), op.regions) for op in walk_ops(fn)],
            list(fn.params), list(fn.results))


def run_pass(p, fn: Function) -> Function:
    """Runs pass p, checking it neither mutates fn nor breaks the IR or param identity."""
    before = snapshot(fn)
    out = p(fn)
    assert out is not fn
    assert snapshot(fn) == before, f"{p.__name__} mutated its input"
    assert all(a is b for a, b in zip(out.params, fn.params, strict=True))
    verify(out)
    return out
