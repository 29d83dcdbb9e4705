"""torch_op's keyword-to-position binding (tracer/record.py) agrees with inspect's."""

import inspect

from hypothesis import given, strategies as st

from tracer.record import _positional


def _f(a, b, c=1, d=2, *, e=3):
    return a, b, c, d, e


def _g(a, /, b, c=1):
    return a, b, c


@given(st.sampled_from([_f, _g]), st.integers(0, 4), st.sets(st.sampled_from("abcde")))
def test_fast_binding_equals_signature_bind(fn, n_positional, keywords):
    sig = inspect.signature(fn)
    params = list(sig.parameters)
    args = tuple(range(min(n_positional, len(params))))
    kwargs = {k: ord(k) for k in keywords}
    try:
        expected = sig.bind(*args, **kwargs)
    except TypeError:
        try:                     # what sig.bind refuses, the call refuses too
            fn(*_positional(fn)(args, kwargs)[0], **_positional(fn)(args, kwargs)[1])
        except TypeError:
            return
        raise AssertionError("the fast binding accepted a call inspect refuses") from None
    assert _positional(fn)(args, kwargs) == (expected.args, expected.kwargs)
