"""How a compile used (or did not use) the idle core is one GRADJIT_LOG line (event "split")
naming the way LLVM ran and, when not on two threads, why; and the cut's balance
(llvm_split.CALLER_SHARE: side B takes more of the kernels, since side A's thread also parses,
plans and links) changes which kernels cross the cut, never the results. Counters and log
text, never timings."""
import logging

import numpy as np
import pytest

from runtime import llvm_split
from tests.runtime.test_parallel_compile import _gmm, _gmm_args, _run, _same_bits


def _square_sum(x):
    return (x * x).sum()


@pytest.fixture
def logged(split, gradjit_env, caplog):
    """use(on): as `split`, with GRADJIT_LOG on; returns run(f, args, argnums) -> (results,
    the split events' texts)."""
    gradjit_env("GRADJIT_LOG", "1")
    gradjit_env("GRADJIT_DISK_CACHE", "0")

    def run(f, args, argnums):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gradjit"):
            out = _run(f, args, argnums)
        return out, [r.getMessage() for r in caplog.records
                     if getattr(r, "event", None) == "split"]
    return split, run


def test_the_pipeline_split_taken_is_logged(logged):
    split, run = logged
    split(True)
    before = llvm_split.counts["pipeline_split"]
    _, lines = run(_gmm, _gmm_args(), (0, 1, 2))
    assert llvm_split.counts["pipeline_split"] == before + 1
    assert len(lines) == 1 and "LLVM pass pipeline and machine code on two threads" in lines[0]


def test_the_pipeline_split_switched_off_is_logged_with_why(logged, monkeypatch):
    split, run = logged
    split(True)
    monkeypatch.setattr(llvm_split, "PIPELINE_SPLIT", False)
    before = dict(llvm_split.counts)
    _, lines = run(_gmm, _gmm_args(), (0, 1, 2))
    assert llvm_split.counts["split"] == before["split"] + 1
    assert llvm_split.counts["pipeline_split"] == before["pipeline_split"]
    assert len(lines) == 2
    assert "LLVM pass pipeline on one thread (llvm_split.PIPELINE_SPLIT is off)" in lines[0]
    assert "LLVM machine code on two threads" in lines[1]


def test_a_refused_pipeline_split_is_logged_with_why(logged, monkeypatch):
    split, run = logged
    split(False)
    expected, _ = run(_gmm, _gmm_args(), (0, 1, 2))
    split(True)
    monkeypatch.setattr(llvm_split, "usable_after_optimisation", lambda p, mod: False)
    before = dict(llvm_split.counts)
    got, lines = run(_gmm, _gmm_args(), (0, 1, 2))
    assert llvm_split.counts["pipeline_refused"] == before["pipeline_refused"] + 1
    assert llvm_split.counts["whole"] == before["whole"] + 1
    assert len(lines) == 2
    assert "pass pipeline on one thread (a side's pipeline made a function the plan does " \
           "not know; parsed again)" in lines[0]
    assert "LLVM one thread (the optimiser made a function the plan does not know)" in lines[1]
    _same_bits(expected, got)


def test_one_thread_is_logged_with_why(logged, monkeypatch):
    split, run = logged
    split(True)
    x = np.linspace(-1, 1, 7)
    _, lines = run(_square_sum, [x], (0,))             # one kernel: nothing to cut
    assert len(lines) == 1 and "LLVM one thread (fewer than two kernels to move)" in lines[0]
    split(True)
    monkeypatch.setattr(llvm_split, "idle_core", lambda: False)
    _, lines = run(_gmm, _gmm_args(), (0, 1, 2))
    assert len(lines) == 1 and "LLVM one thread (no idle core)" in lines[0]
    split(False)
    _, lines = run(_gmm, _gmm_args(), (0, 1, 2))
    assert len(lines) == 1 and "LLVM one thread (the split is off for this compile)" in lines[0]


def test_a_small_cut_is_logged_with_why(logged, monkeypatch):
    split, run = logged
    split(True)
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 10 ** 6)
    _, lines = run(_gmm, _gmm_args(), (0, 1, 2))
    assert len(lines) == 1 and "LLVM one thread (a side would be under 1000000 lines" in lines[0]


# ---- the cut's balance ---------------------------------------------------------------------

def _kernels(sizes: list) -> str:
    """An entry, its glue and one kernel per size (that many instructions)."""
    calls = "".join(f'  call void @"e.body.s{i}"()\n' for i in range(len(sizes)))
    text = ('define void @"e"() {\n  call void @"e.body"()\n  ret void\n}\n'
            f'define internal void @"e.body"() noinline optnone {{\n{calls}  ret void\n}}\n')
    for i, n in enumerate(sizes):
        body = "".join(f"  %v{k} = add i64 {k}, 1\n" for k in range(n))
        text += f'define internal void @"e.body.s{i}"() noinline {{\n{body}  ret void\n}}\n'
    return text


def _side_lines(p, text: str) -> tuple[int, int]:
    _, lines = llvm_split.call_graph(text)
    return (sum(lines[f] for f in p.emit_a - p.glue), sum(lines[f] for f in p.emit_b))


def test_side_b_takes_the_callers_share_more(monkeypatch):
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 0)
    text = _kernels([40] * 20)                  # 20 equal kernels, ~830 lines in all
    monkeypatch.setattr(llvm_split, "CALLER_SHARE", 0.0)
    a, b = _side_lines(llvm_split.plan(text, "e"), text)
    assert a == b
    monkeypatch.setattr(llvm_split, "CALLER_SHARE", 0.1)
    a, b = _side_lines(llvm_split.plan(text, "e"), text)
    assert a == b                               # a module under SHARE_LINES: lines alone
    monkeypatch.setattr(llvm_split, "SHARE_LINES", 0)
    a, b = _side_lines(llvm_split.plan(text, "e"), text)
    total = sum(llvm_split.call_graph(text)[1].values())
    # B stops taking kernels once it outweighs A plus the share: within one kernel of that
    assert b > a and abs((b - a) - 0.1 * total) <= 41


def test_a_kernel_costs_a_side_only_what_it_does_not_emit_already(monkeypatch):
    """Two kernels calling one large noinline helper: the second goes where the helper is
    (10 more lines there, 210 on the other side), so the helper is compiled once."""
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 0)
    monkeypatch.setattr(llvm_split, "SHARE_LINES", 0)
    monkeypatch.setattr(llvm_split, "CALLER_SHARE", 0.12)     # ~52 of ~430 lines
    text = _kernels([9, 9, 205]).replace(
        '  %v0 = add i64 0, 1\n', '  call void @"gj.h"()\n', 2)
    text += "define internal void @\"gj.h\"() noinline {\n" + "".join(
        f"  %h{k} = add i64 {k}, 1\n" for k in range(199)) + "  ret void\n}\n"
    refs, _ = llvm_split.call_graph(text)
    assert refs["e.body.s0"] == refs["e.body.s1"] == {"gj.h"}
    p = llvm_split.plan(text, "e")
    assert {"e.body.s0", "e.body.s1", "gj.h"} <= p.emit_b and "gj.h" not in p.emit_a
    assert "e.body.s2" in p.emit_a


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3])
def test_the_cut_moves_the_results_do_not(split, monkeypatch, share):
    split(False)
    expected = _run(_gmm, _gmm_args(), (0, 1, 2))
    monkeypatch.setattr(llvm_split, "CALLER_SHARE", share)
    split(True)
    before = llvm_split.counts["pipeline_split"]
    got = _run(_gmm, _gmm_args(), (0, 1, 2))
    assert llvm_split.counts["pipeline_split"] == before + 1
    _same_bits(expected, got)
