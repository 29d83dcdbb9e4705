"""Every primitive has an entry in every per-primitive table (and no table has stale entries),
and its traits agree with the tables that depend on them.

A primitive is declared once in ir/primitives.py, with its traits; each layer keeps a table
keyed by its name. A table whose module does not exist yet is skipped, with the reason
printed. Adding a primitive means: its _register call, one entry in each COMPLETE_TABLES
table, and one row in tests/prim_samples; these tests name whatever is missing.
"""
import importlib

import pytest

from ir.primitives import PRIMITIVES, having

# ---- tables with an entry for every primitive: (module, table, what an entry must be) ------
COMPLETE_TABLES = [
    ("ir.interpret", "impl_rules", callable),
    ("ir.autodiff", "vjp_rules", callable),
    ("ir.autodiff", "jvp_rules", callable),
    ("codegen.lower", "lower_rules", callable),
    ("ir.batching", "batch_rules", callable),
    # PyTorch's grad_fn name of a gradient computed last by the primitive (tracer's own table)
    ("tracer.autograd.engine", "_PRIM_NODES", lambda name: isinstance(name, str) and name),
    ("tests.prim_samples", "SAMPLES", lambda row: row.grad and row.compiled),
]
# ---- tables with entries for some primitives (rewrites, special cases): no stale names -----
PARTIAL_TABLES = [
    ("codegen.lower", "scalar_rules"),
    ("codegen.elemental", "elemental_rules"),
    ("codegen.elemental", "REDUCE_KINDS"),
    ("codegen.kernels", "kernel_rules"),
    ("ir.passes.simplify", "simplify_rules"),
    ("ir.passes.layout", "layout_rules"),
    ("ir.passes.dce", "_PRUNERS"),
    ("ir.printer", "IMPLIED_PARAMS"),
    ("ir.autodiff.transforms", "vjp_tape_rules"),
    ("ir.autodiff.transforms", "jvp_fused_rules"),
    ("tracer.autograd.views", "_SHAPE_PRIMS"),
]
# --------------------------------------------------------------------------------------------


def _load(module: str, table: str) -> dict:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        # only a missing module (or package) skips; a broken import inside it still fails
        if e.name is None or not module.startswith(e.name):
            raise
        reason = f"{module} does not exist yet, so {table} is not checked"
        print(reason)
        pytest.skip(reason)
    return getattr(mod, table)


def _id(entry) -> str:
    return f"{entry[0]}.{entry[1]}"


@pytest.mark.parametrize("entry", COMPLETE_TABLES, ids=_id)
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitive_has_an_entry(entry, name):
    module, table_name, valid = entry
    table = _load(module, table_name)
    assert name in table, f"{_id(entry)} has no entry for primitive '{name}'"
    assert valid(table[name]), f"{_id(entry)}['{name}'] is not a valid entry: {table[name]!r}"


@pytest.mark.parametrize("entry", [e[:2] for e in COMPLETE_TABLES] + PARTIAL_TABLES, ids=_id)
def test_table_has_no_entries_for_unknown_primitives(entry):
    stale = sorted(set(_load(*entry)) - set(PRIMITIVES))
    assert not stale, f"{_id(entry)} has entries for primitives that do not exist: {stale}"


def test_a_table_whose_module_does_not_exist_yet_is_skipped_with_the_reason():
    with pytest.raises(pytest.skip.Exception, match="codegen.not_written_yet does not exist"):
        _load("codegen.not_written_yet", "lower_rules")


# ---- the traits agree with the tables built without them -----------------------------------

def test_elementwise_primitives_are_exactly_those_with_a_scalar_lowering():
    scalar = set(_load("codegen.lower", "scalar_rules"))
    assert scalar == set(having(elementwise=True)), (
        f"elementwise but no scalar rule: {sorted(having(elementwise=True) - scalar)}; "
        f"a scalar rule but not elementwise: {sorted(scalar - having(elementwise=True))}")


def test_reductions_are_exactly_the_reduce_kinds_of_codegen():
    assert set(_load("codegen.elemental", "REDUCE_KINDS")) == set(having(kind="reduce"))


def test_inline_primitives_are_exactly_those_computed_elementally():
    """fusion 'inline' means codegen computes the op inside its consumer's loop: a scalar or
    elemental rule; the others are materialised (reductions, argmax) or kernels."""
    elemental = set(_load("codegen.lower", "scalar_rules")) | set(
        _load("codegen.elemental", "elemental_rules"))
    kernels = set(_load("codegen.kernels", "kernel_rules"))
    assert having(fusion="kernel") == kernels
    assert having(fusion="inline") == elemental - having(fusion="materialize")


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_traits_are_consistent(name):
    p = PRIMITIVES[name]
    arity = p.signature[0]
    if p.elementwise:
        assert p.kind in ("unary", "binary", "compare", "other") and arity, name
    if p.commutative:
        assert p.elementwise and arity == 2, f"{name}: only binary elementwise ops commute"
    if p.linear or p.rearranges:
        assert arity == 1 and p.differentiable, f"{name}: linear / rearranging take one operand"
    if p.cost != "cheap":
        assert p.elementwise, f"{name}: only inlined elementwise ops have a cost class"
    if p.kind == "control":
        assert p.fusion == "kernel", name


def test_a_trait_value_outside_its_classes_is_refused():
    from ir import primitives
    with pytest.raises(ValueError, match="cost 'cheapest'"):
        primitives._register("not_registered", lambda x: x, "unary", cost="cheapest")
    assert "not_registered" not in PRIMITIVES


def test_having_selects_by_every_given_trait():
    bits = {"bitwise_and", "bitwise_or", "bitwise_xor"}
    shifts = {"shift_left", "shift_right_logical", "shift_right_arithmetic", "bitcast_convert"}
    assert having(commutative=True) == {"add", "mul", "eq", "ne", "logical_and",
                                        "logical_or"} | bits
    assert having(elementwise=True, differentiable=False) == {
        "sign", "logical_not", "stop_gradient", "logical_and", "logical_or",
        "lt", "le", "gt", "ge", "eq", "ne"} | bits | shifts
