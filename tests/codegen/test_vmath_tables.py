"""codegen/vmath_tables.py is what the exact-arithmetic derivations give (each module's
derive function), so the table can replace the derivation at compile time."""
import pytest

from codegen import vmath, vmath_gamma, vmath_special, vmath_tables

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
