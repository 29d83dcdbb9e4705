"""gradjit_trig_huge_f64(x, which): sin (which 0), cos (1) or tan (2) of any f64 x, the rare
path of codegen/vmath_trig.py for arguments beyond the Cody-Waite range.

A Payne-Hanek reduction in integer arithmetic. x = m * 2^E with m a 53-bit integer; x * 2/pi
mod 4 only needs the bits of 2/pi from weight 2^-(E-1) on (earlier ones make m * 2^E * bit a
multiple of 4), so a 192-bit window W of them, picked from the table TWO_OVER_PI_WORDS by E,
gives t = m * W mod 4 from three 64 x 64-bit products, kept as a fixed-point i128 (2 integer
bits, 126 fraction bits). W's truncation costs m * 2^-190 <= 2^-137. The double nearest to a
multiple of pi/2 (6381956970095103 * 2^797) has t within 2^-61 of an integer, so t - rint(t)
still has 65 significant bits; normalised by its leading zeros it becomes a double-double,
r = (t - q) * pi/2 another, and sin r, cos r come from the f64 polynomials with r's low part
and the low part of r^2 folded in: ~0.55 ulp before the quadrant's sign, tan ~1.5 ulp.

A cold, noinline, readnone function, and optnone: it runs rarely and O0 code generation
halves its compile time (~30 ms of the ~60). Accurate for 2^-10 <= |x| (the callers use it
from 1e6 on); nan for +-inf and nan.

Compiled once per process: the runtime (runtime/shared_code.py) installs a provider with
`use_shared`; kernels then only declare the function, and the provider JIT-links its one
definition (`helper_module_text`, object code kept in the disk cache) under its symbol
before the first kernel that calls it is compiled. That took ~20 ms off every cold compile
of a kernel using sin, cos or tan. Without a provider (codegen used on its own, or the
provider failed) each module defines its own internal copy, as before.
"""
from llvmlite import ir as ll

from codegen.bounds_layout import check_table_reach
from codegen.vmath_base import _F64, PI, _Emit, _split

HUGE_TRIG = "gradjit_trig_huge_f64"
SIN, COS, TAN = 0, 1, 2

# floor(2/pi * 2^(64k)) mod 2^64 for k = 1..19 after a zero word: bit j of 2/pi (weight 2^-j)
# sits in word (j + 63) >> 6 at position (j + 63) & 63 from the top. 19 words reach 2^-1216:
# the largest double (E = 971) needs bits to 2^-1161 and a word past its window's start.
# tests/numerics/test_trig_range.py recomputes them from pi to 1,390 bits.
TWO_OVER_PI_WORDS = (
    0x0000000000000000, 0xA2F9836E4E441529, 0xFC2757D1F534DDC0, 0xDB6295993C439041,
    0xFE5163ABDEBBC561, 0xB7246E3A424DD2E0, 0x06492EEA09D1921C, 0xFE1DEB1CB129A73E,
    0xE88235F52EBB4484, 0xE99C7026B45F7E41, 0x3991D639835339F4, 0x9C845F8BBDF9283B,
    0x1FF897FFDE05980F, 0xEF2F118B5A0A6D1F, 0x6D367ECF27CB09B7, 0x4F463F669E5FEA2D,
    0x7527BAC7EBE5F17B, 0x3D0739F78A5292EA, 0x6BFB5FB11F8D5D08, 0x56033046FC7B6BAB)
PIO2_PARTS = tuple(_split(PI / 2, 52, 2))          # pi/2 to ~2^-107 relative

I32, I64, I128 = (ll.IntType(w) for w in (32, 64, 128))


# ---- the quadrant, shared with codegen/vmath_trig.py's fast path --------------------------------

def sin_of_quadrant(e: _Emit, sin_r: ll.Value, cos_r: ll.Value, q: ll.Value) -> ll.Value:
    """sin(q*pi/2 + r): quadrant 0: sin r, 1: cos r, 2: -sin r, 3: -cos r."""
    odd = e.bld.trunc(q, ll.IntType(1))
    val = e.bld.select(odd, cos_r, sin_r)
    sign = e.bld.shl(e.bld.and_(q, e.i(2)), e.i(e.fmt.width - 2))
    return e.flip_sign(val, sign)


def tan_of_quadrant(e: _Emit, sin_r: ll.Value, cos_r: ll.Value, q: ll.Value,
                    tiny: float) -> ll.Value:
    """tan(q*pi/2 + r): sin r / cos r for even q, -cos r / sin r for odd q; |den| >= tiny."""
    bld = e.bld
    odd = bld.trunc(q, ll.IntType(1))
    den = bld.select(odd, sin_r, cos_r)
    # |sin r| is tiny only for r = 0 (x = 0) or in discarded lanes beyond the fast range
    den = e.when("<", e.call("llvm.fabs", den), tiny, e.f(tiny), den)
    ratio = bld.fdiv(bld.select(odd, cos_r, sin_r), den)
    return e.flip_sign(ratio, bld.shl(bld.zext(odd, e.ity), e.i(e.fmt.width - 1)))


_provider = None          # () -> bool: the runtime made HUGE_TRIG resolvable (use_shared)


def use_shared(provider) -> None:
    """From now on kernels declare HUGE_TRIG, provided by the process, when provider() (called
    at each kernel's first use, before anything is compiled) returns True; None: every
    module defines its own copy."""
    global _provider
    _provider = provider


def huge_trig_function(module: ll.Module) -> ll.Function:
    """The module's gradjit_trig_huge_f64, declared or emitted on first use."""
    fn = module.globals.get(HUGE_TRIG)
    if fn is None:
        fn = ll.Function(module, ll.FunctionType(ll.DoubleType(), [ll.DoubleType(), I32]),
                         HUGE_TRIG)
        if _provider is not None and _provider():
            for attr in ("cold", "nounwind", "readnone"):
                fn.attributes.add(attr)
        else:
            fn.linkage = "internal"
            _define(fn)
    return fn


def helper_module_text() -> str:
    """A module whose one exported function is HUGE_TRIG (the process's shared copy)."""
    module = ll.Module(name=HUGE_TRIG)
    _define(ll.Function(module, ll.FunctionType(ll.DoubleType(), [ll.DoubleType(), I32]),
                        HUGE_TRIG))
    return str(module)


def _define(fn: ll.Function) -> None:
    for attr in ("cold", "noinline", "nounwind", "readnone", "optnone"):   # see above
        fn.attributes.add(attr)
    _emit_body(fn)


def _table(module: ll.Module) -> ll.GlobalVariable:
    ty = ll.ArrayType(I64, len(TWO_OVER_PI_WORDS))
    table = ll.GlobalVariable(module, ty, HUGE_TRIG + ".two_over_pi")
    table.linkage = "internal"
    table.global_constant = True
    table.initializer = ll.Constant(ty, [ll.Constant(I64, w) for w in TWO_OVER_PI_WORDS])
    return table


# the window's last word for the largest exponent field (inf and nan: 2047), j0 = 971
HIGHEST_WORD = (2047 - 1076 + 63 >> 6) + 3


def _window(bld: ll.IRBuilder, table: ll.GlobalVariable, j0: ll.Value) -> list[ll.Value]:
    """The 192 bits of 2/pi from bit j0 on (-63 <= j0 <= 971), as three i64, most
    significant first."""
    check_table_reach(table.value_type.count, HIGHEST_WORD)
    k = bld.ashr(bld.add(j0, ll.Constant(I64, 63)), ll.Constant(I64, 6))
    shift = bld.zext(bld.and_(bld.add(j0, ll.Constant(I64, 63)), ll.Constant(I64, 63)), I128)
    words = [bld.load(bld.gep(table, [ll.Constant(I64, 0), bld.add(k, ll.Constant(I64, d))],
                              inbounds=True)) for d in range(4)]
    out = []
    for hi, lo in zip(words, words[1:]):             # (hi:lo << shift) >> 64; shift < 64
        pair = bld.or_(bld.shl(bld.zext(hi, I128), ll.Constant(I128, 64)), bld.zext(lo, I128))
        out.append(bld.trunc(bld.lshr(bld.shl(pair, shift), ll.Constant(I128, 64)), I64))
    return out


def _times_window_mod4(bld: ll.IRBuilder, m: ll.Value, w: list[ll.Value]) -> ll.Value:
    """m * (w0:w1:w2) mod 2^192, its top 128 bits as an i128 (t in units of 2^-126; the low
    word only matters through its carry), from two 128-bit products and a wrapping one."""
    m128 = bld.zext(m, I128)
    p2 = bld.mul(m128, bld.zext(w[2], I128))
    p1 = bld.mul(m128, bld.zext(w[1], I128))
    mid = bld.add(bld.lshr(p2, ll.Constant(I128, 64)), bld.zext(bld.trunc(p1, I64), I128))
    top = bld.add(bld.add(bld.mul(m, w[0]), bld.trunc(bld.lshr(p1, ll.Constant(I128, 64)), I64)),
                  bld.trunc(bld.lshr(mid, ll.Constant(I128, 64)), I64))
    return bld.or_(bld.shl(bld.zext(top, I128), ll.Constant(I128, 64)),
                   bld.zext(bld.trunc(mid, I64), I128))


def _to_double_double(e: _Emit, a: ll.Value) -> tuple[ll.Value, ll.Value]:
    """An i128 a >= 0 times 2^-126 as (hi, lo): the top 53 bits after the leading zeros
    (exact) and the next 64 (rounded). A tiny a (x near a multiple of pi/2: a ~ 2^65 at
    worst) still has 53 + 12 bits."""
    bld = e.bld
    ctlz = bld.module.globals.get("llvm.ctlz.i128") or ll.Function(
        bld.module, ll.FunctionType(I128, [I128, ll.IntType(1)]), "llvm.ctlz.i128")
    lz = bld.call(ctlz, [a, ll.Constant(ll.IntType(1), 0)])
    lz = bld.select(bld.icmp_unsigned(">", lz, ll.Constant(I128, 127)), ll.Constant(I128, 127), lz)
    norm = bld.shl(a, lz)
    top = bld.trunc(bld.lshr(norm, ll.Constant(I128, 75)), I64)
    nxt = bld.trunc(bld.lshr(norm, ll.Constant(I128, 11)), I64)
    lz64 = bld.trunc(lz, I64)
    hi = bld.fmul(bld.sitofp(top, e.ty), e.pow2(bld.sub(e.i(-51), lz64)))
    lo = bld.fmul(bld.uitofp(nxt, e.ty), e.pow2(bld.sub(e.i(-115), lz64)))
    return hi, lo


def _reduce(e: _Emit, table: ll.GlobalVariable, x: ll.Value):
    """(r_hi, r_lo, q): x = q*pi/2 + r_hi + r_lo with |r| <= pi/4 (q an i64, mod 4)."""
    bld = e.bld
    ix = e.bits(x)
    expo = bld.and_(bld.lshr(ix, e.i(52)), e.i(0x7FF))
    m = bld.or_(bld.and_(ix, e.i((1 << 52) - 1)), e.i(1 << 52))
    j0 = bld.sub(expo, e.i(1075 + 1))                      # E - 1
    j0 = bld.select(bld.icmp_signed("<", j0, e.i(-63)), e.i(-63), j0)   # tiny x: stay in bounds
    t = _times_window_mod4(bld, m, _window(bld, table, j0))
    top = bld.trunc(bld.lshr(t, ll.Constant(I128, 64)), I64)
    q = bld.lshr(bld.add(top, e.i(1 << 61)), e.i(62))     # rint(t) mod 4
    f = bld.sub(t, bld.shl(bld.zext(q, I128), ll.Constant(I128, 126)))   # signed, |f| <= 1/2
    neg = bld.icmp_signed("<", f, ll.Constant(I128, 0))
    f_hi, f_lo = _to_double_double(e, bld.select(neg, bld.neg(f), f))
    p0, p1 = (e.f(p) for p in PIO2_PARTS)
    r_hi = bld.fmul(f_hi, p0)
    r_lo = bld.fadd(e.fma(f_hi, p0, bld.fneg(r_hi)), e.fma(f_lo, p0, bld.fmul(f_hi, p1)))
    s = bld.fadd(r_hi, r_lo)                                 # renormalise (Fast2Sum)
    r_lo = bld.fsub(r_lo, bld.fsub(s, r_hi))
    # x < 0: t was computed for |x|, so x = -q*pi/2 - r: negate both.
    x_neg = bld.icmp_signed("<", ix, e.i(0))
    sign = bld.shl(bld.zext(bld.xor(neg, x_neg), e.ity), e.i(63))
    q = bld.select(x_neg, bld.neg(q), q)
    return e.flip_sign(s, sign), e.flip_sign(r_lo, sign), q


def _sin_cos(e: _Emit, r_hi: ll.Value, r_lo: ll.Value) -> tuple[ll.Value, ll.Value]:
    """sin and cos of r_hi + r_lo (|r| <= pi/4), ~0.55 ulp: the polynomial tails and the
    rounding of r^2 kept out of the final addition."""
    bld = e.bld
    r2 = bld.fmul(r_hi, r_hi)
    r2_lo = e.fma(r_hi, r_hi, bld.fneg(r2))
    half = e.f(0.5)
    # sin(r_hi + r_lo) = r_hi + r_hi^3 S(r^2) + r_lo (1 - r^2/2)
    tail = e.fma(bld.fmul(r_hi, r2), e.horner(r2, e.fmt.sin_s),
                 bld.fmul(r_lo, e.fma(bld.fneg(half), r2, e.f(1.0))))
    sin_r = bld.fadd(r_hi, tail)
    # cos = (1 - h) + [((1 - (1 - h)) - h) - r2_lo/2 + r^4 C(r^2) - r_hi r_lo], h = r2/2
    h = bld.fmul(half, r2)
    w = bld.fsub(e.f(1.0), h)
    c_tail = e.fma(bld.fmul(r2, r2), e.horner(r2, e.fmt.cos_c[1:]),
                   bld.fsub(bld.fsub(bld.fsub(e.f(1.0), w), h), bld.fmul(half, r2_lo)))
    cos_r = bld.fadd(w, e.fma(bld.fneg(r_hi), r_lo, c_tail))
    return sin_r, cos_r


def _emit_body(fn: ll.Function) -> None:
    x, which = fn.args
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    e = _Emit(bld, ll.DoubleType())
    r_hi, r_lo, q = _reduce(e, _table(fn.module), x)
    sin_r, cos_r = _sin_cos(e, r_hi, r_lo)
    sin_x = sin_of_quadrant(e, sin_r, cos_r, q)
    cos_x = sin_of_quadrant(e, sin_r, cos_r, bld.add(q, e.i(1)))
    tan_x = tan_of_quadrant(e, sin_r, cos_r, q, 2.0 ** (1 - _F64.bias))
    res = bld.select(bld.icmp_signed("==", which, ll.Constant(I32, SIN)), sin_x,
                     bld.select(bld.icmp_signed("==", which, ll.Constant(I32, COS)), cos_x, tan_x))
    finite = bld.fcmp_ordered("<", e.call("llvm.fabs", x), e.f(float("inf")))
    bld.ret(bld.select(finite, res, bld.fsub(x, x)))           # +-inf, nan: nan
