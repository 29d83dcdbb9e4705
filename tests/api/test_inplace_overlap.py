"""An in-place op whose operand overlaps the tensor it writes, as PyTorch 2.13: refused
where PyTorch refuses ("some elements of the input tensor and the written-to tensor refer to
a single memory location", with the user's line), run where it runs (`x.add_(x)`, disjoint
windows, the same window, fill_ with a 0-d view, a bool-mask write of one element).
gradjit read such an operand as if it were cloned: a silent answer where PyTorch stops.
Values and texts recorded in recorded/overlap.json (recorded/record_overlap.py)."""
import json
from pathlib import Path

import numpy as np
import pytest

import gradjit as torch
from tests.api import overlap_programs
from tests.api.test_expand_views import same
from tracer.autograd import overlap

RECORDED = json.loads((Path(__file__).parent / "recorded" / "overlap.json").read_text())


def test_overlapping_operands_are_refused_or_run_as_pytorch():
    got = overlap_programs.run(overlap_programs.overlap_sources, torch)
    want = RECORDED["overlap_sources"]
    assert len(got) == len(want) == 23
    for i, (g, w) in enumerate(zip(got, want)):
        assert same(g, w), (i, g, w)
    assert sum(w[0] == "RuntimeError" for w in want) == 13      # (both outcomes covered)


def test_out_arguments_overlapping_an_input_are_refused_or_run_as_pytorch():
    """`torch.add(x[1], x[0], out=...)`: elementwise ops refuse a partial overlap, cat any
    overlap, matmul none (it computes into a copy)."""
    got = overlap_programs.run(overlap_programs.overlap_out, torch)
    want = RECORDED["overlap_out"]
    assert same(got, want), (got, want)
    assert [w[0] for w in want] == ["ok", "ok", "ok", "RuntimeError", "RuntimeError", "ok",
                                    "RuntimeError"]


def test_the_refusal_names_the_users_line_and_changes_nothing():
    x = torch.arange(4.).reshape(2, 2)
    with pytest.raises(RuntimeError, match=r"^unsupported operation: some elements of the "
                       r"input tensor .*\(at test_inplace_overlap.py:\d+\)$"):
        x.add_(x[0])
    assert x.tolist() == [[0.0, 1.0], [2.0, 3.0]] and x._version == 0


def test_an_advanced_index_write_of_the_tensor_itself_is_refused():
    x = torch.arange(4.)
    with pytest.raises(RuntimeError, match="some elements of the input tensor"):
        x[torch.tensor([1, 0, 2, 3])] = x
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_an_operand_pytorch_finds_too_hard_to_check_reads_the_old_values():
    """Not dense (`x[:, 1:]` of a 2x3): PyTorch does not check; gradjit's answer is the
    cloned operand's, which is PyTorch's here (recorded: [[1, 3, 2], [7, 9, 5]])."""
    x = torch.arange(6.).reshape(2, 3)
    x[:, :2].add_(x[:, 1:])
    assert x.tolist() == [[1.0, 3.0, 2.0], [7.0, 9.0, 5.0]]


def test_overlap_status_follows_pytorchs_rule():
    a = np.arange(6).reshape(2, 3)
    assert overlap.status(None, a[0], (2, 3)) == overlap.PARTIAL_OVERLAP
    assert overlap.status(a[0], a[1], (2, 3)) == overlap.NO
    assert overlap.status(None, a, (2, 3)) == overlap.FULL
    assert overlap.status(a.T, a, (2, 3)) == overlap.PARTIAL_OVERLAP
    assert overlap.status(a[:, :2], a[:, 1:], (2, 3)) == overlap.TOO_HARD
    assert overlap.status(a[:0], a, (2, 3)) == overlap.NO
