"""sin, cos and tan as vectorisable LLVM IR (see codegen/vmath.py's docstring for the method),
accurate for every finite argument (docs/numerics.md has the measured bounds).

The loop body keeps only the fast path: a Cody-Waite reduction (three parts of pi/2, FMA),
accurate for |x| <= TRIG_ACCURATE_LIMIT. Elements beyond it (and +-inf) branch, under a branch
weighted as almost never taken, to a call of gradjit_{sin,cos,tan}_huge_f64, cold out-of-line
wrappers emitted once per module around codegen/vmath_trig_huge.py's exact Payne-Hanek
reduction (compiled once per process: runtime/shared_code.py). The loop vectoriser scalarises
the call under a per-lane branch (see _huge_entry), so loops stay vectorised with no libm
calls, and a lane that is not huge costs a test and a branch not taken (f32 sin: ~1 ns/elem on
Zen 3 with AVX2).
"""
import platform

from llvmlite import ir as ll

from codegen.vmath_base import _F32, _Emit
from codegen.vmath_trig_huge import (COS, SIN, TAN, huge_trig_function, sin_of_quadrant,
                                     tan_of_quadrant)

# |x| up to which the Cody-Waite path keeps its ulp bounds (measured, including the floats
# nearest to multiples of pi/2). f32 loses the quadrant past ~2e6, where x*2/pi has ulp 1/8;
# f32 tan is evaluated in f64 and has the f64 limit. Beyond: the rare path.
TRIG_ACCURATE_LIMIT = {"f32": 1e6, "f64": 1e15}


def _sin_cos_reduced(e: _Emit, x: ll.Value) -> tuple[ll.Value, ll.Value, ll.Value]:
    """(sin r, cos r, q) with x = q*pi/2 + r, |r| <= pi/4, q an integer (only q mod 4 used)."""
    n_f, q = e.nearest_int(e.bld.fmul(x, e.f(e.fmt.two_over_pi)))
    minus_n = e.bld.fneg(n_f)
    r = x
    for part in e.fmt.pio2:                   # Cody-Waite in three FMA steps
        r = e.fma(minus_n, e.f(part), r)
    # |r| can pass pi/4 a little when x*2/pi rounds across a half-integer (f32: up to 0.87 at
    # 1e6); the polynomials hold to 1. Past the accurate range (where the rare path replaces
    # the result) r can be large garbage: clamping keeps the discarded values finite.
    r = e.when(">", r, 1.0, e.f(1.0), r)
    r = e.when("<", r, -1.0, e.f(-1.0), r)
    r2 = e.bld.fmul(r, r)
    sin_r = e.fma(e.bld.fmul(r, r2), e.horner(r2, e.fmt.sin_s), r)
    cos_r = e.fma(r2, e.horner(r2, e.fmt.cos_c), e.f(1.0))
    return sin_r, cos_r, q


def _rare_path(e: _Emit, x: ll.Value, fast: ll.Value, which: int, limit: float,
               in_range: bool, mark: int) -> ll.Value:
    """fast if the caller promises |x| <= limit (in_range); else fast, except where |x| > limit
    (or x is +-inf): there gradjit_{sin,cos,tan}_huge_f64(x), called in a block of its own
    behind a branch weighted as taken once in a million. Leaves the builder in the join
    block: emitters must take bld.block after a rule (codegen/loops.py does)."""
    if in_range:
        return fast
    bld = e.bld
    far = e.bld.fcmp_ordered(">", e.call("llvm.fabs", x), e.f(limit))
    here = bld.block
    huge = bld.append_basic_block("trig.huge")
    join = bld.append_basic_block("trig.join")
    bld.cbranch(far, huge, join).set_weights([1, 1 << 20])
    moved = _movable(here, x, mark)
    bld.position_at_end(huge)
    wide = x if isinstance(x.type, ll.DoubleType) else bld.fpext(x, ll.DoubleType())
    slow = bld.call(_huge_entry(bld.module, which), [wide])
    if slow.type != x.type:
        slow = bld.fptrunc(slow, x.type)
    bld.branch(join)
    bld.position_at_end(join)
    res = bld.phi(x.type)
    res.add_incoming(fast, here)
    res.add_incoming(slow, huge)
    for instr in moved:                  # after the phi, in their order
        here.instructions.remove(instr)
        instr.parent = join
        join.instructions.append(instr)
    bld.position_at_end(join)            # the builder's insertion index is past them
    return res


def _movable(block: ll.Block, x: ll.Value, mark: int) -> list:
    """The instructions of block, before index mark (where this rule's own code starts), that
    x does not depend on: the caller's code around the sin (say the v*1.5 of v*1.5 + sin(v)*3).
    They move to the join block, so that each element's arithmetic stays in one block as it was
    without the rare path: LLVM forms FMAs (a*b + c) within a block only, and a split would
    make the scalar loop contract differently from the vector loop, which is one block after
    if-conversion (results then depended on an element's position, so on the thread count).
    Phis, allocas and the cone of x stay."""
    cone, stack = set(), [x]
    while stack:
        v = stack.pop()
        if isinstance(v, ll.Instruction) and v.parent is block and id(v) not in cone:
            cone.add(id(v))
            stack.extend(v.operands)
    return [i for i in block.instructions[:mark]
            if id(i) not in cone and not isinstance(i, (ll.PhiInstr, ll.AllocaInstr))]


# ---- the rare path's functions --------------------------------------------------------------

# The one vector variant declared to the loop vectoriser (see _huge_entry). On x86, which has
# no scalable vectors, a declaration of an SVE-mangled scalable one: it satisfies the check and
# can never be chosen. Elsewhere (AArch64 with SVE could choose it) a defined fixed-width
# variant of VARIANT_WIDTH lanes, a width no target picks, is correct if ever called.
SCALABLE_VARIANT = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
VARIANT_WIDTH = 64
_F64_TY = ll.DoubleType()


def _cold(fn: ll.Function) -> ll.Function:
    fn.linkage = "internal"
    for attr in ("cold", "noinline", "nounwind", "readnone"):
        fn.attributes.add(attr)
    return fn


def _huge_entry(module: ll.Module, which: int) -> ll.Function:
    """gradjit_{sin,cos,tan}_huge_f64(x), the call in the body's cold block, emitted once per
    module.

    LLVM's loop vectoriser refuses any loop with a call unless the callee has a vector variant
    (vector-function-abi-variant). With one at the vector width it calls the variant on every
    vector (measured: +1.3 ns/elem for f64 sin on Zen 3: the call spills the live vectors).
    With one only at a width it never picks (VARIANT_WIDTH lanes) it instead scalarises the
    call under a per-lane branch on the far mask: a few cheap tests per vector, no call
    unless a lane is huge (+0.4 ns/elem). The variant is still correct if ever chosen."""
    name = f"gradjit_{('sin', 'cos', 'tan')[which]}_huge_f64"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    fn = _cold(ll.Function(module, ll.FunctionType(_F64_TY, [_F64_TY]), name))
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    bld.ret(bld.call(huge_trig_function(module), [fn.args[0], ll.Constant(ll.IntType(32), which)]))
    if SCALABLE_VARIANT:
        variant = _scalable_variant(module, fn)
        abi = f"_ZGVsMxv_{name}({variant.name})"
    else:
        variant = _masked_variant(module, fn, VARIANT_WIDTH)
        abi = f"_ZGV_LLVM_M{VARIANT_WIDTH}v_{name}({variant.name})"
    set.add(fn.attributes, f'"vector-function-abi-variant"="{abi}"')   # llvmlite knows no
    _compiler_used(module, [variant])                                   # string attributes
    return fn


class _ScalableVector(ll.Type):
    """<vscale x n x elem>: llvmlite's IR builder has no scalable vectors (only declared)."""

    def __init__(self, elem: ll.Type, n: int):
        self.elem, self.n = elem, n

    def _to_string(self) -> str:
        return f"<vscale x {self.n} x {self.elem}>"


def _scalable_variant(module: ll.Module, scalar: ll.Function) -> ll.Function:
    """A declaration only: name_mx(<vscale x 2 x double> x, <vscale x 2 x i1> mask). x86 has
    no scalable vectors, so the vectoriser can never pick it (nor emit a call to it)."""
    vec, mask = _ScalableVector(_F64_TY, 2), _ScalableVector(ll.IntType(1), 2)
    return ll.Function(module, ll.FunctionType(vec, [vec, mask]), f"{scalar.name}_mx")


def _masked_variant(module: ll.Module, scalar: ll.Function, n: int) -> ll.Function:
    """<n x double> name_m<n>(<n x double> x, <n x i1> mask): scalar(x[i]) where mask[i], as a
    loop over the lanes (small code: it is there for the vectoriser's legality check)."""
    vec, mask_ty = ll.VectorType(_F64_TY, n), ll.VectorType(ll.IntType(1), n)
    fn = _cold(ll.Function(module, ll.FunctionType(vec, [vec, mask_ty]), f"{scalar.name}_m{n}"))
    fn.attributes.add("minsize")
    x, mask = fn.args
    i32 = ll.IntType(32)
    entry, loop, call, latch, done = (fn.append_basic_block(s)
                                      for s in ("entry", "loop", "call", "latch", "done"))
    bld = ll.IRBuilder(entry)
    bld.branch(loop)
    bld.position_at_end(loop)
    lane, acc = bld.phi(i32), bld.phi(vec)
    bld.cbranch(bld.extract_element(mask, lane), call, latch)
    bld.position_at_end(call)
    filled = bld.insert_element(acc, bld.call(scalar, [bld.extract_element(x, lane)]), lane)
    bld.branch(latch)
    bld.position_at_end(latch)
    new_acc = bld.phi(vec)
    new_acc.add_incoming(acc, loop)
    new_acc.add_incoming(filled, call)
    nxt = bld.add(lane, ll.Constant(i32, 1))
    lane.add_incoming(ll.Constant(i32, 0), entry)
    lane.add_incoming(nxt, latch)
    acc.add_incoming(ll.Constant(vec, None), entry)
    acc.add_incoming(new_acc, latch)
    bld.cbranch(bld.icmp_unsigned("<", nxt, ll.Constant(i32, n)), loop, done)
    bld.position_at_end(done)
    bld.ret(new_acc)
    return fn


def _compiler_used(module: ll.Module, fns: list[ll.Function]) -> None:
    """Adds fns to @llvm.compiler.used, which keeps the (so far unreferenced) vector variants
    alive until the loop vectoriser has looked for them."""
    ptr = ll.PointerType()
    used = module.globals.get("llvm.compiler.used")
    if used is None:
        used = ll.GlobalVariable(module, ll.ArrayType(ptr, 0), "llvm.compiler.used")
        used.linkage, used.section = "appending", "llvm.metadata"
        used.initializer = ll.Constant(used.value_type, [])
    members = list(used.initializer.constant) + list(fns)
    used.value_type = ll.ArrayType(ptr, len(members))                   # grown in place
    used.initializer = ll.Constant(used.value_type, members)


def _limit(e: _Emit) -> float:
    return TRIG_ACCURATE_LIMIT["f32" if e.fmt is _F32 else "f64"]


def sin(bld: ll.IRBuilder, x: ll.Value, in_range: bool = False) -> ll.Value:
    """sin(x) to ~1 ulp for every finite x; nan for +-inf and nan; sin(-0) = -0.

    in_range: the caller guarantees |x| <= TRIG_ACCURATE_LIMIT or x non-finite (lgamma's
    sin(pi r), |r| <= 1/2): straight-line code, no rare-path branch."""
    e, mark = _Emit(bld, x.type), len(bld.block.instructions)
    res = _rare_path(e, x, sin_of_quadrant(e, *_sin_cos_reduced(e, x)), SIN, _limit(e),
                     in_range, mark)
    return e.when("==", x, 0.0, x, res)                  # sin(-0) = -0: r - 0*r^3/6 is +0


def cos(bld: ll.IRBuilder, x: ll.Value, in_range: bool = False) -> ll.Value:
    """cos(x) = sin(x + pi/2): the quadrant advanced by one (in_range: as for sin)."""
    e, mark = _Emit(bld, x.type), len(bld.block.instructions)
    sin_r, cos_r, q = _sin_cos_reduced(e, x)
    fast = sin_of_quadrant(e, sin_r, cos_r, bld.add(q, e.i(1)))
    return _rare_path(e, x, fast, COS, _limit(e), in_range, mark)


def tan(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """tan(x); f32 is evaluated in f64 and rounded once, since the quotient of two f32
    polynomials would be ~3 ulp off. Finite for finite x (bounded by 1/min_normal)."""
    e, mark = _Emit(bld, x.type), len(bld.block.instructions)
    tiny = 2.0 ** (1 - e.fmt.bias)
    wide = _Emit(bld, ll.DoubleType())
    xw = x if e.fmt is not _F32 else bld.fpext(x, wide.ty)
    fast = tan_of_quadrant(wide, *_sin_cos_reduced(wide, xw), tiny)
    if e.fmt is _F32:
        fast = bld.fptrunc(fast, x.type)
    res = _rare_path(e, x, fast, TAN, TRIG_ACCURATE_LIMIT["f64"], False, mark)
    return e.when("==", x, 0.0, x, res)                  # tan(-0) = -0, as for sin
