"""One local Ray instance for the whole test session, started by the first test that asks.

Ray is part of the `test` extra, so these tests run (never skip) wherever the README's test
command runs. Two logical CPUs: the data-parallel pool takes one each; the other pools the
tests build (dist.run, a misconfigured worker) reserve none.
"""
import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def cluster():
    from gradjit import distributed as dist
    c = dist.init(num_workers=2, num_cpus=2, timeout=300)
    yield c
    dist.shutdown()
