"""A line budget, as tinygrad keeps one: no Python module over 500 lines.

Small modules with one job are the project's style (docs/design.md); this test notices growth
when it happens. A module over budget is split by subject, or, while a split is pending, listed
in ALLOWED with its reason and a ceiling at its current size, so it cannot grow unnoticed.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tracer", "ir", "codegen", "runtime", "gradjit", "benchmarks", "tests")
BUDGET = 500

# path -> (ceiling, why it is over budget for now); drop the entry once the split lands
ALLOWED: dict[str, tuple[int, str]] = {}


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def lines(path: Path) -> int:
    with path.open(encoding="utf-8") as f:
        return sum(1 for _ in f)


def test_the_modules_are_found():
    # a moved root or renamed packages must fail here, not pass with nothing to measure
    found = {p.relative_to(ROOT).parts[0] for p in modules()}
    assert found == set(PACKAGES)


def test_every_module_is_within_the_line_budget():
    over = []
    for path in modules():
        rel, n = path.relative_to(ROOT).as_posix(), lines(path)
        ceiling = ALLOWED[rel][0] if rel in ALLOWED else BUDGET
        if n > ceiling:
            over.append(f"{rel}: {n} lines (allowed {ceiling})")
    assert not over, "split these by subject:\n" + "\n".join(over)


def test_allowed_modules_exist():
    missing = [p for p in ALLOWED if not (ROOT / p).exists()]
    assert not missing, f"remove from ALLOWED (no longer there): {missing}"
