"""repr() of tensors, compared with what real torch 2.13.0 printed for the same expressions.

Each expression below was evaluated with torch and its repr() copied here; the test runs the
same expression with gradjit bound to the name `torch`. They cover PyTorch's formatter rules
beyond the seed documents: line wrapping at 80 columns, summarisation past 1000 elements,
scientific notation, nan/inf, empty tensors, integer widths, suffix wrapping.
"""

import warnings

import pytest

import gradjit


def leaf(data, dtype=None):
    return gradjit.tensor(data, dtype=dtype, requires_grad=True)


CASES = [
    ('long vector wraps at 80 columns', 'torch.arange(30.) / 7',
     'tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,\n'
     '        1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000, 2.1429, 2.2857, 2.4286,\n'
     '        2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857, 3.4286, 3.5714, 3.7143,\n'
     '        3.8571, 4.0000, 4.1429])'),
    ('summarised vector', 'torch.arange(2000.)',
     'tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n'
     '        1.9990e+03])'),
    ('summarised matrix', 'torch.arange(3000.).reshape(1000, 3)',
     'tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00],\n'
     '        [3.0000e+00, 4.0000e+00, 5.0000e+00],\n'
     '        [6.0000e+00, 7.0000e+00, 8.0000e+00],\n'
     '        ...,\n'
     '        [2.9910e+03, 2.9920e+03, 2.9930e+03],\n'
     '        [2.9940e+03, 2.9950e+03, 2.9960e+03],\n'
     '        [2.9970e+03, 2.9980e+03, 2.9990e+03]])'),
    ('summarised int matrix', 'torch.arange(5000).reshape(50, 100)',
     'tensor([[   0,    1,    2,  ...,   97,   98,   99],\n'
     '        [ 100,  101,  102,  ...,  197,  198,  199],\n'
     '        [ 200,  201,  202,  ...,  297,  298,  299],\n'
     '        ...,\n'
     '        [4700, 4701, 4702,  ..., 4797, 4798, 4799],\n'
     '        [4800, 4801, 4802,  ..., 4897, 4898, 4899],\n'
     '        [4900, 4901, 4902,  ..., 4997, 4998, 4999]])'),
    ('3-d', 'torch.arange(12.).reshape(2, 2, 3)',
     'tensor([[[ 0.,  1.,  2.],\n'
     '         [ 3.,  4.,  5.]],\n'
     '\n'
     '        [[ 6.,  7.,  8.],\n'
     '         [ 9., 10., 11.]]])'),
    ('nan inf', "torch.tensor([float('nan'), float('inf'), -1.5])",
     'tensor([    nan,     inf, -1.5000])'),
    ('all zeros', 'torch.zeros(3)', 'tensor([0., 0., 0.])'),
    ('negative zero and ints', 'torch.tensor([-0.0, 2.0, -3.0])', 'tensor([-0.,  2., -3.])'),
    ('large ints in float', 'torch.tensor([1e9, 2.0])', 'tensor([1.0000e+09, 2.0000e+00])'),
    ('tiny', 'torch.tensor([1e-5, 3e-5])', 'tensor([1.0000e-05, 3.0000e-05])'),
    ('empty', 'torch.tensor([])', 'tensor([])'),
    ('empty 2-d', 'torch.zeros(0, 3)', 'tensor([], size=(0, 3))'),
    ('empty int', 'torch.zeros(0, dtype=torch.int64)', 'tensor([], dtype=torch.int64)'),
    ('int widths', 'torch.tensor([-100, 5, 20])', 'tensor([-100,    5,   20])'),
    ('bool matrix', 'torch.tensor([[True, False], [False, True]])',
     'tensor([[ True, False],\n'
     '        [False,  True]])'),
    ('f64 scalar', 'torch.tensor(1/3, dtype=torch.float64)',
     'tensor(0.3333, dtype=torch.float64)'),
    ('int32 scalar', 'torch.tensor(7, dtype=torch.int32)', 'tensor(7, dtype=torch.int32)'),
    ('grad_fn suffix wraps', '(torch.arange(12., requires_grad=True) * 1.5).reshape(2, 6)',
     'tensor([[ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000],\n'
     '        [ 9.0000, 10.5000, 12.0000, 13.5000, 15.0000, 16.5000]],\n'
     '       grad_fn=<ViewBackward0>)'),
    ('requires_grad suffix wraps', 'torch.linspace(0, 1, 9, requires_grad=True)',
     'tensor([0.0000, 0.1250, 0.2500, 0.3750, 0.5000, 0.6250, 0.7500, 0.8750, 1.0000],\n'
     '       requires_grad=True)'),
    ('f64 with grad_fn', 'torch.tensor([0.1, 0.2], dtype=torch.float64, requires_grad=True).exp()',
     'tensor([1.1052, 1.2214], dtype=torch.float64, grad_fn=<ExpBackward0>)'),
    ('parameter', 'torch.nn.Parameter(torch.tensor([1.0, 2.5]))',
     'Parameter containing:\n'
     'tensor([1.0000, 2.5000], requires_grad=True)'),
]


@pytest.mark.parametrize("name, expr, text", CASES, ids=[c[0] for c in CASES])
def test_repr_matches_torch(name, expr, text):
    value = eval(expr, {"torch": gradjit})
    assert repr(value) == text


def test_str_equals_repr_and_format_of_scalars():
    t = gradjit.tensor(2.5)
    assert str(t) == repr(t) == "tensor(2.5000)"
    assert f"{t:.2f}" == "2.50" and f"{gradjit.tensor(3):>3}" == "  3"


def test_printing_realises_only_what_it_shows_and_keeps_the_graph():
    x = gradjit.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert repr(y) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_set_printoptions_precision():
    try:
        gradjit.set_printoptions(precision=2)
        assert repr(gradjit.tensor([1.23456, 2.0])) == "tensor([1.23, 2.00])"
    finally:
        gradjit.set_printoptions(profile="default")
    assert repr(gradjit.tensor([1.23456, 2.0])) == "tensor([1.2346, 2.0000])"


# ---- repr formats (torch 2.13.0) -------------------------------------------------------------

REPR_CASES = [
    (lambda: leaf([1.0, 2.0, 3.0]) * 2, "tensor([2., 4., 6.], grad_fn=<MulBackward0>)"),
    (lambda: leaf([1.0, 2.0, 3.0]), "tensor([1., 2., 3.], requires_grad=True)"),
    (lambda: gradjit.tensor(12.0), "tensor(12.)"),
    (lambda: leaf(2.5), "tensor(2.5000, requires_grad=True)"),
    (lambda: leaf(2.0) ** 3, "tensor(8., grad_fn=<PowBackward0>)"),
    (lambda: gradjit.tensor([1.0, 2.0], dtype=gradjit.float64),
     "tensor([1., 2.], dtype=torch.float64)"),
    (lambda: leaf([1.0, 2.0], dtype=gradjit.float64),
     "tensor([1., 2.], dtype=torch.float64, requires_grad=True)"),
    (lambda: leaf([1.5, 2.0], dtype=gradjit.float64) * 2,
     "tensor([3., 4.], dtype=torch.float64, grad_fn=<MulBackward0>)"),
    (lambda: gradjit.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
    (lambda: gradjit.tensor([1, 2], dtype=gradjit.int32), "tensor([1, 2], dtype=torch.int32)"),
    (lambda: gradjit.tensor(3), "tensor(3)"),
    (lambda: gradjit.tensor([True, False]), "tensor([ True, False])"),
    (lambda: gradjit.tensor([-1.5, 2.25]), "tensor([-1.5000,  2.2500])"),
    (lambda: gradjit.tensor([-1.5, 2.25]).sum(), "tensor(0.7500)"),
    (lambda: gradjit.tensor([1, 2]) / 2, "tensor([0.5000, 1.0000])"),
    (lambda: gradjit.tensor([0.001, 1000.0]), "tensor([1.0000e-03, 1.0000e+03])"),
    (lambda: gradjit.tensor([[1.0, 2.0], [3.0, 4.0]]), "tensor([[1., 2.],\n        [3., 4.]])"),
    (lambda: gradjit.tensor([[1.5, -2.0], [3.0, 4.25]]),
     "tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  4.2500]])"),
    (lambda: leaf([1.0, 2.0, 3.0]).sum(), "tensor(6., grad_fn=<SumBackward0>)"),
    (lambda: leaf([1.0, 2.0, 3.0]).mean(), "tensor(2., grad_fn=<MeanBackward0>)"),
]


@pytest.mark.parametrize("make, text", REPR_CASES, ids=[text for _, text in REPR_CASES])
def test_repr(make, text):
    assert repr(make()) == text
    assert str(make()) == text


# ---- printing: PyTorch's exact text ----------------------------------------------------------

PRINTS = [
    ("torch.tensor([1e10, 1.0])", "tensor([1.0000e+10, 1.0000e+00])"),
    ("torch.tensor([1e-10, 1.0])", "tensor([1.0000e-10, 1.0000e+00])"),
    ("torch.tensor([123456.789, 0.001])", "tensor([1.2346e+05, 1.0000e-03])"),
    ("torch.tensor(1e20)", "tensor(1.0000e+20)"),
    ("torch.tensor(-0.0)", "tensor(-0.)"),
    ("torch.tensor([1.123456789])", "tensor([1.1235])"),
    ("torch.tensor([-1, 200000])", "tensor([    -1, 200000])"),
    ("torch.tensor([1e-10, 1e10]).double()",
     "tensor([1.0000e-10, 1.0000e+10], dtype=torch.float64)"),
    ("torch.tensor([1.5, 2.5]).to(torch.int64)", "tensor([1, 2])"),
    ("torch.linspace(0, 1, 7)",
     "tensor([0.0000, 0.1667, 0.3333, 0.5000, 0.6667, 0.8333, 1.0000])"),
    ("torch.tensor([[[1e-3]]])", "tensor([[[0.0010]]])"),
    ("torch.zeros(2, 0)", "tensor([], size=(2, 0))"),
    ("torch.tensor([1000., 2.])", "tensor([1000.,    2.])"),
    ("torch.tensor([[True]])", "tensor([[True]])"),
    ("torch.tensor(2.5, dtype=torch.float64, requires_grad=True)",
     "tensor(2.5000, dtype=torch.float64, requires_grad=True)"),
    ("torch.ones(3, requires_grad=True).sum()", "tensor(3., grad_fn=<SumBackward0>)"),
    ("torch.tensor([1.0, 2.0]) == 1.0", "tensor([ True, False])"),
    ("torch.arange(6.).reshape(2, 3).T",
     "tensor([[0., 3.],\n        [1., 4.],\n        [2., 5.]])"),
    ("torch.tensor([[1e-8, 1.0], [2.0, 3e5]])",
     "tensor([[1.0000e-08, 1.0000e+00],\n        [2.0000e+00, 3.0000e+05]])"),
    ("torch.tensor([0.1, -0.25], dtype=torch.float64) * 3",
     "tensor([ 0.3000, -0.7500], dtype=torch.float64)"),
    ("torch.full((2, 2), 7, dtype=torch.int32)",
     "tensor([[7, 7],\n        [7, 7]], dtype=torch.int32)"),
    ("torch.tensor([[-1.5], [2.25]])", "tensor([[-1.5000],\n        [ 2.2500]])"),
]


@pytest.mark.parametrize("expr, text", PRINTS, ids=[p[0] for p in PRINTS])
def test_repr_matches_pytorch(expr, text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert repr(eval(expr, {"torch": gradjit})) == text
