"""A followed read whose tape's program fetches no array of the step (every operand pinned):
tracer/step_read_code.py wrote an empty `try:` block, so compiling the read's code raised
IndentationError into the user's program. Found by the differential fuzzer (session 21,
seeds 930057 then 930058 in one process: the first leaves the templates that let the
second's step be captured that way)."""
import pytest

import gradjit as torch
from tests.api.capture_check import plain_capture, run_off_and_on  # noqa: F401
from tests.api.test_fuzz_programs import _same_bits
from tests.fuzz_compare import filename
from tests.fuzz_programs import program
from tests.fuzz_run import run
from tracer import step_read_code

SEEDS = (930057, 930058)


@pytest.mark.usefixtures("plain_capture")
def test_a_read_with_nothing_to_fetch_runs_and_gives_the_bits_of_capture_off(monkeypatch):
    empty = []
    guarded = step_read_code._on_index_error_none

    def counted(body):
        empty.append(not body)
        return guarded(body)
    monkeypatch.setattr(step_read_code, "_on_index_error_none", counted)
    on, _, off = run_off_and_on(lambda: [run(program(s), torch, s, filename(s))
                                         for s in SEEDS])
    assert any(empty)                                     # the case was written
    for seed, a, b in zip(SEEDS, on, off):
        assert a["error"] is None and b["error"] is None, seed
        _same_bits(a["records"], b["records"], f"seed {seed}")
