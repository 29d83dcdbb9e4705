"""Sample rows of the special-function primitives (ir/special.py)."""
from __future__ import annotations

from tests.prim_samples.cases import (FLOATS, CompiledCase, F, Row, binary, grad_cases, per_shape,
                                      shape_label, unary)

ROWS: dict[str, Row] = {}

SPECIAL_UNARY = (
    # name      compiled      derivatives (inside the domain, away from its ends)
    ("asin",   (-1, 1),      (-0.8, 0.8)),
    ("acos",   (-1, 1),      (-0.8, 0.8)),
    ("atan",   (-8, 8),      (-3, 3)),
    ("sinh",   (-6, 6),      (-2, 2)),
    ("cosh",   (-6, 6),      (-2, 2)),
    ("asinh",  (-8, 8),      (-3, 3)),
    ("acosh",  (1, 8),       (1.2, 4)),
    ("atanh",  (-1, 1),      (-0.8, 0.8)),
    ("log2",   (0.01, 8),    (0.5, 4)),
    ("log10",  (0.01, 8),    (0.5, 4)),
    ("exp2",   (-8, 8),      (-2, 2)),
    ("erfc",   (-6, 6),      (-2, 2)),
    ("erfinv", (-1, 1),      (-0.8, 0.8)),
    ("lgamma", (-6, 10),     (0.5, 5)),
    ("digamma", (-6, 10),    (0.5, 5)),
)
for _n, (_lo, _hi), (_glo, _ghi) in SPECIAL_UNARY:
    ROWS[_n] = Row(per_shape(_n, lambda b, x, _n=_n: b.emit(_n, x),
                             lambda *s, _lo=_glo, _hi=_ghi: F(*s, low=_lo, high=_hi)),
                   [CompiledCase(unary(_n), FLOATS, _lo, _hi)])

ROWS["polygamma"] = Row(
    [c for _n in (1, 2, 3) for c in per_shape(
        "polygamma", lambda b, x, _n=_n: b.polygamma(x, n=_n), lambda *s: F(*s, low=0.5, high=5),
        shapes=((), (2, 3)))],
    [CompiledCase(unary("polygamma", n=1), FLOATS, -6, 10),
     CompiledCase(unary("polygamma", n=2), FLOATS, 0.1, 10),
     CompiledCase(unary("polygamma", n=4), FLOATS, 0.1, 10)])
ROWS["atan2"] = Row(
    [c for _s in ((), (3,), (2, 1, 3)) for c in grad_cases(
        "atan2", shape_label(_s), lambda b, y, x: b.atan2(y, x), F(*_s), F(*_s, low=0.5))]
    + grad_cases("atan2", "same-operand", lambda b, x: b.atan2(x, x), F(3, low=0.5)),
    [CompiledCase(binary("atan2"), FLOATS, quantize=True)])
