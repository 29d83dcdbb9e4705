"""Scalar lowering rules: one entry per elementwise primitive, keyed by its name.

`scalar_rules` holds these; `lower_rules` is the layer's complete registry (every primitive,
with its scalar, elemental or kernel rule), filled in when the codegen package is imported.

A rule takes the IRBuilder `bld`, the operands' scalar LLVM values and the op's params, and
returns the result's scalar value. Registers hold f32 as `float`, f64 as `double`, i32/i64
as `i32`/`i64` and bool as `i1`; rules dispatch on the operand's LLVM type. Semantics follow
the reference interpreter (ir/interpret.py): integer x/0 = 0 and never traps, max/min
propagate NaN like np.maximum, float->int conversion truncates (saturating, so never poison).

Transcendental functions use codegen.vmath (straight-line, vectorisable) when it provides
the primitive and the `vmath` lowering option is on (the default), otherwise an LLVM
intrinsic or a libm call: `scalar_rule(name, vmath)` picks. scalar_rules holds the latter,
which are always correct.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.loops import I1, I32, I64, declare, intrinsic
from codegen.vmath import VMATH
from codegen.vmath_gamma import GAMMA, NO_LIBM
from codegen.vmath_special import SPECIAL

FP_FLAGS = ("contract",)   # FMA contraction only: no reassociation, results are reproducible
F32, F64 = ll.FloatType(), ll.DoubleType()
LLVM_TYPES = {"f32": F32, "f64": F64, "i32": I32, "i64": I64, "bool": I1}

scalar_rules: dict = {}   # elementwise primitives: (bld, *scalars, **params) -> scalar
lower_rules: dict = {}    # every primitive's rule (scalar, elemental or kernel), filled by codegen


def is_float_type(t: ll.Type) -> bool:
    return isinstance(t, (ll.FloatType, ll.DoubleType))


def const(t: ll.Type, v) -> ll.Constant:
    """A scalar constant of LLVM type t (float, int or bool)."""
    if is_float_type(t):
        return ll.Constant(t, float(v))
    return ll.Constant(t, int(v))


def _libm(bld, base: str, x):
    """Calls libm's `base` (double) or `base`+'f' (float); MCJIT resolves it in-process."""
    name = base + ("f" if x.type == F32 else "")
    return bld.call(declare(bld.module, name, x.type, [x.type]), [x])


def scalar_rule(name: str, vmath: bool = True):
    """The scalar rule of primitive `name`: vmath's when vmath is on and has one."""
    if vmath:
        fast = VMATH.get(name) or SPECIAL.get(name) or GAMMA.get(name)
        if fast is not None:
            return fast
    return scalar_rules[name]


def _math(name: str, intrinsic_name: str | None = None, libm_name: str | None = None):
    """A transcendental rule without vmath: an intrinsic, else libm."""
    def rule(bld, x):
        if intrinsic_name:
            return intrinsic(bld, intrinsic_name, x)
        return _libm(bld, libm_name, x)
    rule.__name__ = f"lower_{name}"
    return rule


for _n, _intr, _lib in (("exp", "llvm.exp", None), ("log", "llvm.log", None),
                        ("sin", "llvm.sin", None), ("cos", "llvm.cos", None),
                        ("tan", None, "tan"), ("tanh", None, "tanh"),
                        ("log1p", None, "log1p"), ("expm1", None, "expm1"),
                        ("erf", None, "erf")):
    scalar_rules[_n] = _math(_n, _intr, _lib)


def _logistic(bld, x):
    # split by sign as the interpreter does, so exp never overflows
    e = scalar_rules["exp"](bld, bld.fneg(intrinsic(bld, "llvm.fabs", x)))
    one = const(x.type, 1.0)
    denom = bld.fadd(one, e, flags=FP_FLAGS)
    pos = bld.fdiv(one, denom, flags=FP_FLAGS)
    neg = bld.fdiv(e, denom, flags=FP_FLAGS)
    return bld.select(bld.fcmp_ordered(">=", x, const(x.type, 0.0)), pos, neg)


scalar_rules["logistic"] = _logistic
scalar_rules["sqrt"] = lambda bld, x: intrinsic(bld, "llvm.sqrt", x)
scalar_rules["rsqrt"] = lambda bld, x: bld.fdiv(const(x.type, 1.0), intrinsic(bld, "llvm.sqrt", x),
                                               flags=FP_FLAGS)
scalar_rules["pow"] = lambda bld, x, y: intrinsic(bld, "llvm.pow", x, y)
# NOTE: frem becomes a call to libm's fmod/fmodf (exact; not vectorised)
scalar_rules["rem"] = lambda bld, x, y: bld.frem(x, y)


def _libm2(bld, base: str, x, y):
    name = base + ("f" if x.type == F32 else "")
    return bld.call(declare(bld.module, name, x.type, [x.type, x.type]), [x, y])


# the special functions' fallbacks are C99 libm's (their vmath bodies: codegen/vmath_special.py)
for _n in SPECIAL:
    scalar_rules[_n] = _math(_n, None, _n) if _n != "atan2" else (
        lambda bld, y, x: _libm2(bld, "atan2", y, x))
for _n in GAMMA:
    scalar_rules[_n] = GAMMA[_n] if _n in NO_LIBM else _math(_n, None, _n)


# ---- arithmetic ------------------------------------------------------------------------

def _arith(fop: str, iop: str):
    def rule(bld, x, y):
        if is_float_type(x.type):
            return getattr(bld, fop)(x, y, flags=FP_FLAGS)
        return getattr(bld, iop)(x, y)
    return rule


scalar_rules["add"] = _arith("fadd", "add")
scalar_rules["sub"] = _arith("fsub", "sub")
scalar_rules["mul"] = _arith("fmul", "mul")


def _div(bld, x, y):
    """Floats: IEEE division. Integers: C truncation with x/0 = 0 and INT_MIN/-1 = INT_MIN."""
    if is_float_type(x.type):
        return bld.fdiv(x, y, flags=FP_FLAGS)
    zero, one = const(x.type, 0), const(x.type, 1)
    int_min = const(x.type, -(1 << (x.type.width - 1)))
    by_zero = bld.icmp_signed("==", y, zero)
    overflow = bld.and_(bld.icmp_signed("==", x, int_min),
                        bld.icmp_signed("==", y, const(x.type, -1)))
    safe = bld.select(bld.or_(by_zero, overflow), one, y)
    return bld.select(by_zero, zero, bld.sdiv(x, safe))


def _minmax(float_intrinsic: str, int_op: str):
    def rule(bld, x, y):
        if is_float_type(x.type):
            return intrinsic(bld, float_intrinsic, x, y)   # NaN-propagating, like np.maximum
        cmp = bld.icmp_unsigned if x.type == I1 else bld.icmp_signed
        return bld.select(cmp(int_op, x, y), x, y)
    return rule


scalar_rules["div"] = _div
scalar_rules["max"] = _minmax("llvm.maximum", ">=")
scalar_rules["min"] = _minmax("llvm.minimum", "<=")


def _neg(bld, x):
    if is_float_type(x.type):
        return bld.fneg(x)
    return bld.sub(const(x.type, 0), x)


def _abs(bld, x):
    if is_float_type(x.type):
        return intrinsic(bld, "llvm.fabs", x)
    return bld.select(bld.icmp_signed("<", x, const(x.type, 0)), _neg(bld, x), x)


def _sign(bld, x):
    """1, -1, or x itself for zeros and NaN (np.sign gives 0 and nan there)."""
    zero, one, minus = const(x.type, 0), const(x.type, 1), const(x.type, -1)
    if is_float_type(x.type):
        neg = bld.select(bld.fcmp_ordered("<", x, zero), minus, x)
        return bld.select(bld.fcmp_ordered(">", x, zero), one, neg)
    neg = bld.select(bld.icmp_signed("<", x, zero), minus, zero)
    return bld.select(bld.icmp_signed(">", x, zero), one, neg)


scalar_rules["neg"] = _neg
scalar_rules["stop_gradient"] = lambda bld, x: x
scalar_rules["abs"] = _abs
scalar_rules["sign"] = _sign


def _power(bld, x, n: int):
    """x**n for n >= 0 by repeated squaring (n = 0 gives 1)."""
    result, base = None, x
    while n:
        if n & 1:
            result = base if result is None else scalar_rules["mul"](bld, result, base)
        n >>= 1
        if n:
            base = scalar_rules["mul"](bld, base, base)
    return const(x.type, 1) if result is None else result


def _integer_pow(bld, x, *, n):
    if n >= 0:
        return _power(bld, x, n)
    p = _power(bld, x, -n)
    if is_float_type(x.type):
        return bld.fdiv(const(x.type, 1.0), p, flags=FP_FLAGS)
    # the interpreter computes 1/x**k in f64 and truncates: 1 and -1 survive, 0 gives INT_MIN
    zero = const(x.type, 0)
    small = bld.select(bld.icmp_signed("==", x, zero), const(x.type, -(1 << (x.type.width - 1))),
                       zero)
    unit = bld.or_(bld.icmp_signed("==", x, const(x.type, 1)),
                   bld.icmp_signed("==", x, const(x.type, -1)))
    return bld.select(unit, p, small)


scalar_rules["integer_pow"] = _integer_pow


# ---- logic and comparisons -------------------------------------------------------------

scalar_rules["logical_not"] = lambda bld, x: bld.xor(x, const(I1, 1))
scalar_rules["logical_and"] = lambda bld, x, y: bld.and_(x, y)
scalar_rules["logical_or"] = lambda bld, x, y: bld.or_(x, y)
scalar_rules["select"] = lambda bld, p, x, y: bld.select(p, x, y)


def compare(bld, op: str, x, y):
    """x op y for op in < <= > >= == !=: ordered for floats except != (true on NaN)."""
    if is_float_type(x.type):
        if op == "!=":
            return bld.fcmp_unordered(op, x, y)
        return bld.fcmp_ordered(op, x, y)
    if x.type == I1:           # bool orders False < True
        return bld.icmp_unsigned(op, x, y)
    return bld.icmp_signed(op, x, y)


for _n, _op in (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="), ("ne", "!=")):
    scalar_rules[_n] = lambda bld, x, y, _op=_op: compare(bld, _op, x, y)


# ---- conversion ------------------------------------------------------------------------

def convert_value(bld, x, to: ll.Type):
    """Converts a scalar between any two register types (float, double, i32, i64, i1)."""
    src = x.type
    if src == to:
        return x
    if to == I1:
        if is_float_type(src):
            return bld.fcmp_unordered("!=", x, const(src, 0.0))    # NaN is truthy, as in NumPy
        return bld.icmp_signed("!=", x, const(src, 0))
    if is_float_type(to):
        if is_float_type(src):
            return bld.fpext(x, to) if to == F64 else bld.fptrunc(x, to)
        return bld.uitofp(x, to) if src == I1 else bld.sitofp(x, to)
    if is_float_type(src):
        name = f"llvm.fptosi.sat.i{to.width}.{'f32' if src == F32 else 'f64'}"
        return bld.call(declare(bld.module, name, to, [src]), [x])
    if src == I1:
        return bld.zext(x, to)
    return bld.sext(x, to) if to.width > src.width else bld.trunc(x, to)


scalar_rules["convert"] = lambda bld, x, *, dtype: convert_value(bld, x, LLVM_TYPES[dtype])


# ---- bits (gj.random's Threefry; & | ^ << >>) ------------------------------------------------

def _shift(kind: str):
    """An amount outside [0, bits) (unsigned compare: negatives too) gives 0, or the sign
    fill for the arithmetic right shift (LLVM would give poison)."""
    def rule(bld, x, s):
        width = const(x.type, x.type.width)
        outside = bld.icmp_unsigned(">=", s, width)
        safe = bld.select(outside, const(x.type, 0), s)
        shifted = getattr(bld, kind)(x, safe)
        fill = const(x.type, 0)
        if kind == "ashr":
            fill = bld.ashr(x, const(x.type, x.type.width - 1))
        return bld.select(outside, fill, shifted)
    return rule


scalar_rules["bitwise_and"] = lambda bld, x, y: bld.and_(x, y)
scalar_rules["bitwise_or"] = lambda bld, x, y: bld.or_(x, y)
scalar_rules["bitwise_xor"] = lambda bld, x, y: bld.xor(x, y)
scalar_rules["shift_left"] = _shift("shl")
scalar_rules["shift_right_logical"] = _shift("lshr")
scalar_rules["shift_right_arithmetic"] = _shift("ashr")
scalar_rules["bitcast_convert"] = lambda bld, x, *, dtype: bld.bitcast(x, LLVM_TYPES[dtype])
