"""`python -m pytest tests/fuzz --fuzz N [--fuzz-seed S]`: a long run of N random programs
(the default suite checks a small fixed-seed budget)."""


def pytest_addoption(parser):
    parser.addoption("--fuzz", type=int, default=0, metavar="N",
                     help="check N random programs (tests/fuzz) instead of the fixed budget")
    parser.addoption("--fuzz-seed", type=int, default=0, metavar="S",
                     help="the first seed of a --fuzz run")
