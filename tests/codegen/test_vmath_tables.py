"""codegen/vmath_tables.py is what the exact-arithmetic derivations give (each module's
derive function), so the table can replace the derivation at compile time."""
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest

from codegen import (vmath, vmath_base, vmath_constants, vmath_gamma, vmath_special,
                     vmath_tables)

DERIVATIONS = {"ERF": vmath.derive_erf_constants, "SPECIAL": vmath_special.derive_constants,
               "GAMMA": vmath_gamma.derive_constants}


def table_text(name: str, values: dict) -> str:
    """The source of one table of codegen/vmath_tables.py, wrapped to 100 columns."""
    lines = [f"{name} = dict("]
    for key, value in values.items():
        text = f"    {key}={value!r},"
        if len(text) <= 100 or not isinstance(value, tuple):
            lines.append(text)
            continue
        lines.append(f"    {key}=(")
        row = ""
        for item in [repr(v) + "," for v in value[:-1]] + [repr(value[-1]) + "),"]:
            if row and len(row) + 1 + len(item) > 92:
                lines.append(" " * 8 + row)
                row = ""
            row = f"{row} {item}" if row else item
        lines.append(" " * 8 + row)
    return "\n".join(lines + [")"])


@pytest.mark.parametrize("name", sorted(DERIVATIONS))
def test_table_is_what_exact_arithmetic_gives(name):
    derived = DERIVATIONS[name]()
    assert derived == getattr(vmath_tables, name, None), (
        f"codegen/vmath_tables.py's {name} is stale; paste:\n\n{table_text(name, derived)}\n")


def test_the_rules_read_the_table_not_the_derivation():
    assert vmath._erf_constants() is vmath_tables.ERF
    assert vmath_special._constants() is vmath_tables.SPECIAL
    assert vmath_gamma._constants() is vmath_tables.GAMMA


@pytest.mark.parametrize("name", ["F32", "F64"])
def test_tanh_pade_truncation_is_below_an_eighth_of_an_ulp(name):
    """The continued fraction cut at tanh_depth, in exact arithmetic, against tanh from a
    60-digit exponential, over |x| <= TANH_SWITCH (the error grows with x: checked on a grid
    up to the switch): relative error below 2^-(mant+3)."""
    args = vmath_constants.FORMAT_ARGS[name]
    num, den = vmath_base._tanh_pade(args["tanh_depth"])
    with localcontext() as ctx:
        ctx.prec = 60
        for k in range(1, 12):
            x = vmath_base.TANH_SWITCH * k / 11
            e2x = (2 * Decimal(x.numerator) / Decimal(x.denominator)).exp()
            want = Fraction((e2x - 1) / (e2x + 1))
            z = x * x
            got = x + x * z * sum(c * z ** i for i, c in enumerate(num)) / sum(
                c * z ** i for i, c in enumerate(den))
            assert abs(got / want - 1) < Fraction(1, 2 ** (args["mant"] + 3)), (name, k)
