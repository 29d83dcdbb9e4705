"""codegen/records.py: the fields classes codegen's plans use instead of dataclasses."""
import pytest

from codegen.dots import View
from codegen.fusion import LoopNest, Out, Root
from codegen.gemm_split import GemmSplit


def test_frozen_records_compare_and_hash_by_value():
    assert Out(3) == Out(3) and Out(3) != Out(4) and hash(Out(3)) == hash(Out(3))
    assert {Out(1): "a"}[Out(1)] == "a"
    assert View(False, 6, ()) == View(trans=False, ld=6, batch=())
    assert Out(3) != 3 and Out(3) != View(False, 3, ())     # another class is never equal
    with pytest.raises(AttributeError, match="frozen Out"):
        Out(3).index = 4


def test_defaults_factories_and_replace():
    split = GemmSplit("m", 12, 4, 4, 1, 4)
    assert split.exact is False
    exact = split.replace(exact=True)
    assert exact.exact is True and exact.rows == 12 and split.exact is False
    a, b = LoopNest((4,)), LoopNest((4,))
    a.roots.append(1)
    assert b.roots == [] and a.order == 0              # a fresh list per instance
    assert Root("v").kind == "store" and Root("v", "reduce", out_index=2).out_index == 2


def test_mutable_records_compare_by_identity():
    a, b = Root("v"), Root("v")
    assert a != b and a == a and len({a, b}) == 2


def test_wrong_arguments_are_clear_errors():
    with pytest.raises(TypeError, match="missing argument 'ld'"):
        View(False)
    with pytest.raises(TypeError, match="takes 3 arguments, got 4"):
        View(False, 1, (), 2)
    with pytest.raises(TypeError, match="unexpected or repeated argument 'trans'"):
        View(False, 1, (), trans=True)
    assert repr(Out(2)) == "Out(index=2)"
