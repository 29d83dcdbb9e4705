"""The issue's 126 bad-input probes (tests/fuzz/bad_inputs.py: 42 bad calls x eager, jit,
grad). Each ends in its exception, with a message that matches and names the probe's line;
none crashes, hangs or returns a number. How they end: 14 IndexError, 10 ShapeError (a
RuntimeError and a TypeError, as PyTorch's shape errors), 7 ValueError, 9 RuntimeError (a
gather index out of range and cross_entropy's float class-index target among them, as
PyTorch), 1 TypeError, 1 NotImplementedError, the
same in each of the three fronts."""
import collections

import numpy as np
import pytest

import gradjit as gj
from tests.fuzz.bad_inputs import PROBES

X = np.arange(12.0).reshape(3, 4) / 7 - 0.5
FRONTS = {
    "eager": lambda call: call(gj.tensor(X)),
    "jit": lambda call: gj.jit(call)(X),
    "grad": lambda call: gj.grad(lambda x: call(x).sum())(X),
}
CASES = [(front, *probe) for probe in PROBES for front in FRONTS]


@pytest.mark.parametrize("front, name, exc, pattern, call", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_input_raises_a_clear_error_naming_the_line(front, name, exc, pattern, call):
    with pytest.raises(exc, match=pattern) as info:
        FRONTS[front](call)
    assert f"bad_inputs.py:{call.__code__.co_firstlineno}" in str(info.value), str(info.value)


def test_the_issue_counts_126_probes_ending_as_the_docstring_says():
    assert len(CASES) == 126
    # the most specific class of each probe's exception (ShapeError before RuntimeError)
    ends = collections.Counter(exc.__name__ for _, _, exc, _, _ in CASES)
    assert ends == {"IndexError": 42, "ShapeError": 30, "ValueError": 21, "RuntimeError": 27,
                    "TypeError": 3, "NotImplementedError": 3}
