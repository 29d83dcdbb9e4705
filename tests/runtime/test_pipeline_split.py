"""The pass pipeline on two threads as well (runtime/llvm_split.py's separable and
optimise_split): each side of the cut is optimised in a module of its own, the other side's
functions kept as `optnone` bodies, then emitted as before. Checked: the fast path is taken
for the benchmark programs, results bitwise equal to the whole-module compile and to the
machine-code-only split, the optimised IR of every function the same as the whole
pipeline's, every refusal (an inlinable helper or a global both sides use, the switch, a
function the plan does not know) falling back, errors on either thread raised in the caller.
Counters, never timings."""
import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradjit as gj
from runtime import engine, llvm_split
from runtime.engine import CompileError
from tests.runtime.test_parallel_compile import (_gmm, _gmm_args, _lstm, _lstm_args, _program,
                                                 _program_text, _run, _same_bits)


def _mlp_args():
    rng = np.random.default_rng(4)
    return [rng.standard_normal((12, 16)) * 0.3, np.zeros(16), rng.standard_normal((16, 5)),
            np.zeros(5), rng.standard_normal((8, 12)), np.eye(5)[rng.integers(0, 5, 8)]]


def _mlp(w1, b1, w2, b2, x, onehot):
    h = gj.maximum(x @ w1 + b1, 0)
    return -(onehot * gj.log_softmax(h @ w2 + b2, axis=1)).sum() / x.shape[0]


PROGRAMS = {"gmm": (_gmm, _gmm_args, (0, 1, 2)), "lstm": (_lstm, _lstm_args, (0, 1, 2, 3)),
            "mlp": (_mlp, _mlp_args, (0, 1, 2, 3))}


def _three_ways(split, monkeypatch, f, args, argnums):
    """(whole module, machine code split only, pipeline split too) results; the last must
    have taken the pipeline split."""
    split(False)
    whole = _run(f, args, argnums)
    split(True)
    monkeypatch.setattr(llvm_split, "PIPELINE_SPLIT", False)
    before = dict(llvm_split.counts)
    machine_only = _run(f, args, argnums)
    assert llvm_split.counts["split"] == before["split"] + 1
    assert llvm_split.counts["pipeline_split"] == before["pipeline_split"]
    split(True)
    monkeypatch.setattr(llvm_split, "PIPELINE_SPLIT", True)
    pipelined = _run(f, args, argnums)
    return whole, machine_only, pipelined


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_benchmark_programs_take_it_and_give_the_same_bits(split, monkeypatch, name):
    f, make_args, argnums = PROGRAMS[name]
    before = llvm_split.counts["pipeline_split"]
    whole, machine_only, pipelined = _three_ways(split, monkeypatch, f, make_args(), argnums)
    assert llvm_split.counts["pipeline_split"] == before + 1, "the pipeline was not split"
    _same_bits(whole, machine_only)
    _same_bits(whole, pipelined)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.sampled_from(["tanh", "exp", "sin", "relu", "log1p"]), min_size=2,
                    max_size=5),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 16))
def test_generated_programs_bitwise(split, monkeypatch, ops, dtype, seed):
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal((5, 6)).astype(dtype)]
    args += [rng.standard_normal((6, 3 + i)).astype(dtype) for i in range(len(ops))]
    whole, machine_only, pipelined = _three_ways(split, monkeypatch, _program(ops), args,
                                                 tuple(range(len(args))))
    _same_bits(whole, pipelined)


# ---- the optimised IR ----------------------------------------------------------------------

def _normalised(fn) -> str:
    """A function's optimised text, metadata and attribute-group numbers normalised (they
    count what the module holds)."""
    return re.sub(r"#\d+", "#N", re.sub(r"!\d+", "!N", str(fn)))


FP_OPS = re.compile(r" (fadd|fsub|fmul|fdiv|frem|fneg|fcmp|fptrunc|fpext|sitofp|uitofp|"
                    r"fptosi|fptoui) |@llvm\.(fma|fmuladd|sqrt|exp|log|vector\.reduce\.f)")


def _fp_ops(text: str) -> list:
    """A kernel's floating-point operations in order, value names normalised. An exported
    kernel keeps its interface on both sides (external: no fastcc, no argument dropped as
    unused or promoted to a value loaded by the caller, as the whole pipeline may do to an
    internal one), so its text differs there; what decides its bits is this sequence."""
    return [re.sub(r"%[-\w.]+", "%v", line.strip()) for line in text.splitlines()
            if FP_OPS.search(line) and not line.startswith(("define", "declare"))]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_each_side_optimises_every_function_as_the_whole_pipeline(monkeypatch, name):
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 0)
    f, make_args, _ = PROGRAMS[name]
    text, entry, level = _program_text(f, make_args())
    p = llvm_split.plan(text, entry)
    assert p is not None and llvm_split.separable(p, text)
    eng = engine.create_execution_engine()
    whole = eng.parse(text, entry, llvm.create_context())
    eng.optimize(whole, level)
    expected = {fn.name: _normalised(fn) for fn in whole.functions if not fn.is_declaration}
    for side, own in (("a", p.emit_a), ("b", p.emit_b)):
        mod = eng.parse(text, entry, llvm.create_context())
        llvm_split._skip_other_side(mod, p, side)
        eng.optimize(mod, level)
        got = {fn.name: _normalised(fn) for fn in mod.functions if not fn.is_declaration}
        for fn in own - p.glue:       # (None: inlined everywhere, in both)
            if fn in p.exported:
                assert _fp_ops(got[fn]) == _fp_ops(expected[fn]), fn
            else:
                assert got.get(fn) == expected.get(fn), fn


# ---- refusals and errors -------------------------------------------------------------------

def _module(helper_attrs: str = "noinline", global_in_both: bool = False) -> str:
    use = '  %g = load i64, ptr @"gj.table"\n' if global_in_both else ""
    text = ('define void @"e"() {\n  call void @"e.body"()\n  ret void\n}\n'
            'define internal void @"e.body"() noinline optnone {\n'
            '  call void @"e.body.s0"()\n  call void @"e.body.s1"()\n  ret void\n}\n'
            f'define internal void @"e.body.s0"() noinline {{\n{use}  call void @"gj.h"()\n'
            '  ret void\n}\n'
            f'define internal void @"e.body.s1"() noinline {{\n{use}  call void @"gj.h"()\n'
            '  ret void\n}\n'
            f'define internal void @"gj.h"() {helper_attrs} {{\n  ret void\n}}\n')
    if global_in_both:
        text = '@"gj.table" = internal constant i64 7\n' + text
    return text


def test_separable_refuses_what_could_change_the_code(monkeypatch):
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 0)
    for text, ok in ((_module("noinline"), True), (_module("noinline optnone"), True),
                     (_module(""), False), (_module("alwaysinline"), False),
                     (_module("noinline", global_in_both=True), False)):
        p = llvm_split.plan(text, "e")
        assert p is not None and llvm_split.separable(p, text) is ok, text
    p = llvm_split.plan(_module(), "e")
    monkeypatch.setattr(llvm_split, "PIPELINE_SPLIT", False)
    assert not llvm_split.separable(p, _module())


def test_unknown_function_after_a_sides_pipeline_compiles_the_whole(split, monkeypatch):
    split(False)
    expected = _run(_gmm, _gmm_args(), (0, 1, 2))
    split(True)
    monkeypatch.setattr(llvm_split, "usable_after_optimisation", lambda p, mod: False)
    before = dict(llvm_split.counts)
    got = _run(_gmm, _gmm_args(), (0, 1, 2))
    assert llvm_split.counts["pipeline_refused"] == before["pipeline_refused"] + 1
    assert llvm_split.counts["whole"] == before["whole"] + 1
    assert llvm_split.counts["pipeline_split"] == before["pipeline_split"]
    _same_bits(expected, got)


@pytest.mark.parametrize("failing_side", ["a", "b"])
def test_an_error_on_either_thread_is_raised_in_the_caller(split, monkeypatch, failing_side):
    split(True)
    real = llvm_split._skip_other_side

    def failing(mod, p, side):
        if side == failing_side:
            raise RuntimeError("refused by the test")
        return real(mod, p, side)
    monkeypatch.setattr(llvm_split, "_skip_other_side", failing)
    with pytest.raises(CompileError, match="refused by the test"):
        _run(_gmm, _gmm_args(), (0, 1, 2))
    monkeypatch.setattr(llvm_split, "_skip_other_side", real)
    split(False)
    expected = _run(_gmm, _gmm_args(), (0, 1, 2))
    split(True)
    _same_bits(expected, _run(_gmm, _gmm_args(), (0, 1, 2)))
