"""The shared ground of codegen/vmath*.py: exact constants (pi, ln 2, series), their
rounding to each float format, and _Emit, the IRBuilder wrapper every vectorised body uses."""

import math
import struct
from decimal import Decimal, localcontext
from fractions import Fraction

from llvmlite import ir as ll

from codegen import vmath_constants
from codegen.records import Record


# ---- exact constants, rounded to each format -------------------------------------------------

def _pi(digits: int = 70) -> Fraction:
    """pi to `digits` decimals (70: about 230 bits), less a few units of the last: Machin's
    formula 16 atan(1/5) - 4 atan(1/239) in integers."""
    scale = 10 ** digits

    def atan_inv(n: int) -> int:
        total, term, k, sign = 0, scale // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k += 2
            sign = -sign
        return total

    return Fraction(16 * atan_inv(5) - 4 * atan_inv(239), scale)


def _ln2() -> Fraction:
    with localcontext() as ctx:
        ctx.prec = 70
        return Fraction(Decimal(2).ln())


def _round(v: Fraction, mant: int) -> float:
    """v rounded to nearest-even with `mant` explicit mantissa bits (23: f32, 52: f64)."""
    if v == 0:
        return 0.0
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < Fraction(2) ** e:
        e -= 1                                       # now 2^e <= |v| < 2^(e+1)
    return math.ldexp(round(v / Fraction(2) ** (e - mant)), e - mant)


def _split(v: Fraction, mant: int, parts: int) -> list[float]:
    """v as a sum of `parts` floats, each the rounded remainder of the previous ones."""
    out = []
    for _ in range(parts):
        out.append(_round(v, mant))
        v -= Fraction(out[-1])
    return out


def _tanh_pade(depth: int) -> tuple[list[Fraction], list[Fraction]]:
    """(C, D) with tanh(x) = x + x * z C(z) / D(z), z = x^2, D(0) = 1: Lambert's continued
    fraction tanh x = x / (1 + z/(3 + z/(5 + ... z/(2 depth + 1)))) as one ratio (a Pade
    approximant), written as a correction to x so that x's own term costs no rounding."""
    def add(u: list, v: list) -> list:
        width = max(len(u), len(v))
        return [sum(w[i] for w in (u, v) if i < len(w)) for i in range(width)]

    p, q = [Fraction(2 * depth + 1)], [Fraction(1)]          # the tail of the fraction, p/q
    for k in range(depth - 1, -1, -1):                        # (2k+1) + z q/p = ((2k+1)p + zq)/p
        p, q = add([(2 * k + 1) * c for c in p], [Fraction(0)] + q), p
    # tanh = x q/p; q(0) = p(0), so q - p = z C(z)
    num = [c / p[0] for c in add(q, [-c for c in p])]
    return num[1:], [c / p[0] for c in p]


def _economize(coeffs: list[Fraction], hi: Fraction, degree: int) -> list[Fraction]:
    """Lanczos economisation: a near-minimax polynomial of `degree` on [0, hi] for `coeffs`.

    On z = h(1 + t), t in [-1, 1], the top power t^k is traded for t^k - T_k(t)/2^(k-1)
    (Chebyshev T_k), which has lower degree and differs by at most |coefficient|/2^(k-1).
    Exact arithmetic throughout; the result is mapped back to powers of z.
    """
    h = hi / 2
    n = len(coeffs)
    pt = [sum(c * math.comb(k, j) * h ** k for k, c in enumerate(coeffs) if k >= j)
          for j in range(n)]                                  # powers of t
    cheb = [[Fraction(1)], [Fraction(0), Fraction(1)]]        # T_k in powers of t
    while len(cheb) < n:
        t_prev, t_last = cheb[-2], cheb[-1]
        cheb.append([2 * a - b for a, b in zip([Fraction(0)] + t_last, t_prev + [0, 0])])
    for k in range(n - 1, degree, -1):
        scale = pt[k] / cheb[k][k]
        pt = [a - scale * b for a, b in zip(pt, cheb[k] + [0] * (n - k - 1))]
    # back to z: t = z/h - 1
    return [sum(pt[k] * math.comb(k, j) * (-1) ** (k - j) / h ** j for k in range(j, degree + 1))
            for j in range(degree + 1)]


def _economize_symmetric(coeffs: list[Fraction], h: Fraction, degree: int) -> list[Fraction]:
    """Lanczos economisation on [-h, h]: with r = h t, the top power t^k is traded for
    t^k - T_k(t)/2^(k-1) (lower degree, off by at most |coefficient|/2^(k-1)), top down."""
    n = len(coeffs)
    pt = [c * h ** k for k, c in enumerate(coeffs)]               # powers of t
    cheb = [[Fraction(1)], [Fraction(0), Fraction(1)]]
    while len(cheb) < n:
        t_last, t_prev = cheb[-1], cheb[-2]
        cheb.append([2 * a - b for a, b in zip([Fraction(0)] + t_last, t_prev + [0, 0])])
    for k in range(n - 1, degree, -1):
        scale = pt[k] / cheb[k][k]
        pt = [a - scale * b for a, b in zip(pt, cheb[k] + [0] * (n - k - 1))]
    return [pt[k] / h ** k for k in range(degree + 1)]


def _exp_q(mant: int, fit: tuple | None, econ: tuple | None) -> tuple:
    """exp's Q (e^r = 1 + r + r^2 Q(r), |r| <= ln2/2): a given fit, else the Taylor series
    1/(j+2)! of econ[0] terms economised to econ[1] terms."""
    if fit is not None:
        return tuple(_round(Fraction(c), mant) for c in fit)
    taylor = [Fraction(1, math.factorial(j + 2)) for j in range(econ[0])]
    return tuple(_round(c, mant) for c in _economize_symmetric(taylor, EXP_REDUCED, econ[1] - 1))


PI = _pi()
LN2 = _ln2()
EXP_REDUCED = LN2 / 2 * Fraction(1001, 1000)  # |r| after Cody-Waite, with room for its rounding


class _Format(Record, frozen=True):
    """Per-precision constants: layout, Cody-Waite splits, clamps and polynomial coefficients.
    NOTE: a Record, not a frozen dataclass: making that class was ~2 ms of every cold start."""
    _fields = (
        "width", "mant", "bias",   # mant: explicit mantissa bits
        "log2e",
        "ln2",             # ln 2 = ln2[0] + ln2[1] (+ ~2^-2mant)
        "two_over_pi",
        "pio2",            # pi/2 in three parts
        "sqrt_half_bits",  # bit pattern of sqrt(1/2): the lower end of log's mantissa range
        "expm1_q",         # expm1(r) = r + r^2 * sum_j q_j r^j,         q_j = 1/(j+2)!
        "exp_q",           # the same, fewer terms, near-minimax (_exp_q): exp, tanh, logistic
        "sin_s",           # sin(r) = r + r^3 * sum_k s_k r^(2k-2),      s_k = (-1)^k/(2k+1)!
        "cos_c",           # cos(r) = 1 + r^2 * sum_k c_k r^(2k-2),      c_k = (-1)^k/(2k)!
        "log_r",           # R(z) = sum_j r_j z^j, 2 atanh(s) = 2s + s R(s^2), r_j = 2/(2j+1)
        "tanh_num",        # tanh(x) = x + x z C(z)/D(z), z = x^2, for |x| <= TANH_SWITCH:
        "tanh_den",        # C and D (D(0) = 1) from _tanh_pade
        "exp_lo",          # exp(x) rounds to 0 below this ...
        "exp_hi",          # ... and overflows above this; both keep |n| < 2 * bias
        "expm1_lo",        # expm1(x) rounds to -1 below this: e^x < 2^-(mant+3)
    )


# Below it tanh is a Pade approximant; above, 1 - 2/(e^2|x| + 1) (tanh(0.55) = 0.50).
TANH_SWITCH = Fraction(11, 20)


def _make_format(width: int, mant: int, bias: int, pack: str, exp_deg: int, sin_k: int,
                 cos_k: int, log_j: int, tanh_depth: int, exp_fit: tuple | None = None,
                 exp_econ: tuple | None = None) -> _Format:
    """Round the exact constants and coefficients to one precision."""
    def rnd_all(seq):
        return tuple(_round(Fraction(c), mant) for c in seq)

    sqrt_half = _round(Fraction(math.sqrt(0.5)), mant)
    tanh_num, tanh_den = _tanh_pade(tanh_depth)
    return _Format(
        width=width, mant=mant, bias=bias,
        log2e=_round(1 / LN2, mant),
        ln2=tuple(_split(LN2, mant, 2)),
        two_over_pi=_round(2 / PI, mant),
        pio2=tuple(_split(PI / 2, mant, 3)),
        sqrt_half_bits=int.from_bytes(struct.pack("<" + pack, sqrt_half), "little"),
        expm1_q=rnd_all(Fraction(1, math.factorial(j + 2)) for j in range(exp_deg - 1)),
        exp_q=_exp_q(mant, exp_fit, exp_econ),
        sin_s=rnd_all(Fraction((-1) ** k, math.factorial(2 * k + 1)) for k in range(1, sin_k + 1)),
        cos_c=rnd_all(Fraction((-1) ** k, math.factorial(2 * k)) for k in range(1, cos_k + 1)),
        log_r=rnd_all(Fraction(2, 2 * j + 1) for j in range(1, log_j + 1)),
        tanh_num=rnd_all(tanh_num), tanh_den=rnd_all(tanh_den),
        exp_lo=float(math.floor(float(LN2) * -(bias + mant + 2))),
        exp_hi=float(math.ceil(float(LN2) * (bias + 1))),
        expm1_lo=float(math.floor(float(LN2) * -(mant + 4))),
    )


# The constants as a table (vmath_constants.py; tests/codegen/test_vmath.py checks it against
# _make_format): the exact arithmetic took ~40 ms of every cold start.
_F32 = _Format(**vmath_constants.F32)
_F64 = _Format(**vmath_constants.F64)


# ---- emission helpers -----------------------------------------------------------------------

class _Emit:
    """One IRBuilder plus the float type being emitted, its integer twin and its constants."""

    def __init__(self, bld: ll.IRBuilder, ty: ll.Type):
        if isinstance(ty, ll.FloatType):
            self.fmt = _F32
        elif isinstance(ty, ll.DoubleType):
            self.fmt = _F64
        else:
            raise TypeError(f"vmath: expected a float or double value, got type {ty}")
        self.bld, self.ty = bld, ty
        self.ity = ll.IntType(self.fmt.width)

    def f(self, v: float) -> ll.Constant:
        return ll.Constant(self.ty, v)

    def i(self, v: int) -> ll.Constant:
        return ll.Constant(self.ity, v)

    def call(self, name: str, *args: ll.Value) -> ll.Value:
        """Call the overloaded intrinsic `name` at this float type, declaring it once."""
        full = f"{name}.{'f32' if self.fmt is _F32 else 'f64'}"
        module = self.bld.module
        fn = module.globals.get(full)
        if fn is None:
            fn = ll.Function(module, ll.FunctionType(self.ty, [self.ty] * len(args)), full)
        return self.bld.call(fn, list(args))

    def fma(self, a: ll.Value, b: ll.Value, c: ll.Value) -> ll.Value:
        return self.call("llvm.fma", a, b, c)

    def horner(self, x: ll.Value, coeffs: tuple) -> ll.Value:
        """coeffs[0] + x*coeffs[1] + ... by Horner's rule with FMAs."""
        acc = self.f(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self.f(c))
        return acc

    def bits(self, x: ll.Value) -> ll.Value:
        return self.bld.bitcast(x, self.ity)

    def from_bits(self, n: ll.Value) -> ll.Value:
        return self.bld.bitcast(n, self.ty)

    def when(self, pred: str, x: ll.Value, bound: float, then: ll.Value,
             other: ll.Value) -> ll.Value:
        """select(x <pred> bound, then, other), an ordered compare: false when x is nan."""
        return self.bld.select(self.bld.fcmp_ordered(pred, x, self.f(bound)), then, other)

    def nearest_int(self, t: ll.Value) -> tuple[ll.Value, ll.Value]:
        """rint(t) as a float and as an integer, for |t| < 2^(mant-1).

        NOTE: the integer comes from the bits of t + 1.5*2^mant (whose ulp is 1), not from
        fptosi, which is poison for nan or huge t; here those give harmless garbage bits.
        """
        magic = self.f(1.5 * 2.0 ** self.fmt.mant)
        n_int = self.bld.sub(self.bits(self.bld.fadd(t, magic)), self.bits(magic))
        return self.call("llvm.rint", t), n_int

    def pow2(self, k: ll.Value) -> ll.Value:
        """2^k as a float, from the exponent field; needs 1 - bias <= k <= bias."""
        field = self.bld.add(k, self.i(self.fmt.bias))
        return self.from_bits(self.bld.shl(field, self.i(self.fmt.mant)))

    def ldexp(self, y: ll.Value, n: ll.Value) -> ll.Value:
        """y * 2^n for |n| < 2*bias - 2 and y near 1, in two exact-or-final-rounding steps.

        The halves a = n >> 1 and n - a are each representable; y * 2^a stays normal, so only
        the second product rounds: once, to inf on overflow or into the denormals.
        """
        a = self.bld.ashr(n, self.i(1))
        return self.bld.fmul(self.bld.fmul(y, self.pow2(a)), self.pow2(self.bld.sub(n, a)))

    def flip_sign(self, x: ll.Value, mask: ll.Value) -> ll.Value:
        """x with its sign bit xor-ed with the (already shifted) integer mask."""
        return self.from_bits(self.bld.xor(self.bits(x), mask))
