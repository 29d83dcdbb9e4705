"""The torch front's integer bit operations against values recorded from PyTorch 2.13.

Recorded with /tmp/torchvenv (torch==2.13.0) from the same inputs:
    a = torch.tensor([-8, 5, 1, -1, 123456789, -2147483648], dtype=torch.int32)
    s = torch.tensor([1, 31, 32, 33, 3, -1], dtype=torch.int32)
    b = torch.tensor([3, -6, 7, 0, -1, 255], dtype=torch.int32)
"""
import numpy as np
import pytest

import gradjit as gj

A = np.array([-8, 5, 1, -1, 123456789, -2147483648], np.int32)
S = np.array([1, 31, 32, 33, 3, -1], np.int32)
B = np.array([3, -6, 7, 0, -1, 255], np.int32)

TORCH = {
    "a << s": [-16, -2147483648, 0, 0, 987654312, 0],
    "a >> s": [-4, 0, 0, -1, 15432098, -1],
    "a & b": [0, 0, 1, 0, 123456789, 0],
    "a | b": [-5, -1, 7, -1, -1, -2147483393],
    "a ^ b": [-5, -1, 6, -1, -123456790, -2147483393],
    "~a": [7, -6, -2, 0, -123456790, 2147483647],
    "a.long() << 40": [-8796093022208, 5497558138880, 1099511627776, -1099511627776,
                       6614966517421309952, 0],
    "a.long() >> 63": [-1, 0, 0, -1, 0, -1],
    "a.long() << 64": [0, 0, 0, 0, 0, 0],
    "a.long() >> 64": [-1, 0, 0, -1, 0, -1],
    "bitwise_left_shift(a, 2)": [-32, 20, 4, -4, 493827156, 0],
    "3 << a[:3]": [0, 96, 6],
}


def _run(expr: str, a, s, b):
    bitwise_left_shift = gj.bitwise_left_shift     # noqa: F841  (named in the expressions)
    return eval(expr)


@pytest.mark.parametrize("expr", sorted(TORCH))
def test_values_equal_pytorch(expr):
    a, s, b = gj.tensor(A), gj.tensor(S), gj.tensor(B)
    assert _run(expr, a, s, b).tolist() == TORCH[expr]


@pytest.mark.parametrize("expr", sorted(TORCH))
def test_compiled_equals_imperative(expr):
    jitted = gj.jit(lambda a, s, b: _run(expr, a, s, b))
    assert jitted(A, S, B).tolist() == TORCH[expr]


def test_dtypes_follow_pytorch_promotion():
    a = gj.tensor(A)
    assert (a & 3).dtype == gj.int32 and (a.long() & 3).dtype == gj.int64
    assert (a & gj.tensor(3, dtype=gj.int64)).dtype == gj.int32        # 0-d does not promote
    assert (a & gj.tensor([3], dtype=gj.int64)).dtype == gj.int64
    assert (a << 2).dtype == gj.int32
    t, f = gj.tensor([True, False]), gj.tensor([True, True])
    assert (t ^ f).tolist() == [False, True] and (~t).tolist() == [False, True]
    assert gj.bitwise_and(t, f).dtype == gj.bool


@pytest.mark.parametrize("call,exc,text", [
    (lambda: gj.bitwise_and(gj.tensor([1.0]), gj.tensor([2.0])), NotImplementedError,
     "\"bitwise_and_cpu\" not implemented for 'Float'"),
    (lambda: gj.tensor([1.0]) & 1, NotImplementedError,
     "\"bitwise_and_cpu\" not implemented for 'Float'"),
    (lambda: gj.tensor([1.0]) << 1, NotImplementedError,
     "\"lshift_cpu\" not implemented for 'Float'"),
    (lambda: gj.tensor([1.0], dtype=gj.float64) >> 1, NotImplementedError,
     "\"rshift_cpu\" not implemented for 'Double'"),
    (lambda: gj.tensor([1]) & 1.5, NotImplementedError,
     "\"bitwise_and_cpu\" not implemented for 'Float'"),
    (lambda: ~gj.tensor([1.0]), TypeError,
     r"~ \(operator.invert\) is only implemented on integer and Boolean-type tensors"),
])
def test_float_operands_raise_pytorch_errors(call, exc, text):
    with pytest.raises(exc, match=text):
        call()


def test_bit_ops_are_not_differentiable_but_leave_gradients_intact():
    k = np.array([1, 2, 3], np.int32)
    g = gj.grad(lambda x: (x * ((gj.tensor(k) << 1) ^ 1).float()).sum())(
        np.ones(3, np.float32))
    np.testing.assert_array_equal(g.numpy(), [3.0, 5.0, 7.0])
