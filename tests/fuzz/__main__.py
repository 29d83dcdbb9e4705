"""Long fuzz runs: `python -m tests.fuzz N [FIRST_SEED]` checks N random programs and prints
each failing program with what disagreed, then a tally by kind."""
from __future__ import annotations

import collections
import sys
import time

from tests.fuzz.check import check_program
from tests.fuzz.programs import random_program


def run(n: int, first: int = 0, out=None) -> collections.Counter:
    out = out or sys.stdout       # looked up per call: under pytest, the stream of the moment
    tally: collections.Counter = collections.Counter()
    start = time.time()
    for seed in range(first, first + n):
        report = check_program(random_program(seed))
        tally["programs"] += 1
        tally["skipped derivative checks"] += len(report.skipped)
        for kind, _ in report.failures:
            tally[kind] += 1
        if report.failures:
            tally["failing programs"] += 1
            print(f"---- seed {seed}\n{report}", file=out, flush=True)
        if tally["programs"] % 50 == 0:
            print(f"{dict(tally)} after {time.time() - start:.0f} s", file=out, flush=True)
    print(f"{dict(tally)} in {time.time() - start:.0f} s", file=out, flush=True)
    return tally


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    run(count, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
