"""Views share storage with their base, as in PyTorch: in-place changes go both ways.

Each case runs the same code with `torch` bound to gradjit; `expected` is what torch
2.13.0 gave for `out` when this file was written (the code was run with real torch).
Basic indexing, view/reshape, t()/transpose, unbind and detach() share storage and the
version counter; advanced indexing copies.
"""

import textwrap

import numpy as np
import pytest

import gradjit


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


CASES = [
    ('row add_', '''
x = torch.zeros(2, 3)
x[0].add_(1)
out = [x.tolist(), x._version]
''',
     [[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], 1]),
    ('column mul_ through slice', '''
x = torch.arange(6.).reshape(2, 3)
c = x[:, 1]
c.mul_(10)
out = [x.tolist(), c.tolist(), x._version, c._version]
''',
     [[[0.0, 10.0, 2.0], [3.0, 40.0, 5.0]], [10.0, 40.0], 1, 1]),
    ('base change shows in view', '''
x = torch.arange(4.)
v = x[1:3]
x.add_(100)
out = [v.tolist(), v._version]
''',
     [[101.0, 102.0], 1]),
    ('transpose view', '''
x = torch.zeros(2, 3)
x.t()[2].fill_(5)
out = [x.tolist()]
''',
     [[[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]]]),
    ('view/reshape view', '''
x = torch.zeros(2, 3)
x.view(-1)[4] = 7.0
out = [x.tolist()]
''',
     [[[0.0, 0.0, 0.0], [0.0, 7.0, 0.0]]]),
    ('sibling views', '''
x = torch.zeros(4)
a = x[:2]
b = x[1:]
a.fill_(1)
out = [b.tolist(), x.tolist()]
''',
     [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]),
    ('advanced index is a copy', '''
x = torch.zeros(3)
y = x[[0, 2]]
y.add_(1)
out = [x.tolist(), y.tolist()]
''',
     [[0.0, 0.0, 0.0], [1.0, 1.0]]),
    ('view of leaf requiring grad', '''
w = torch.zeros(3, requires_grad=True)
try:
    w[0].add_(1)
    out = ['no error']
except RuntimeError as e:
    out = [str(e)]
''',
     ['a view of a leaf Variable that requires grad is being used in an in-place operation.']),
    ('no_grad init through view', '''
w = torch.zeros(2, 2, requires_grad=True)
with torch.no_grad():
    w[0].fill_(3.0)
    w.t()[1].add_(1)
out = [w.tolist(), w.is_leaf, w.requires_grad, w.grad_fn is None, w._version]
''',
     [[[3.0, 4.0], [0.0, 1.0]], True, True, True, 2]),
    ('grad through view write', '''
x = torch.tensor([1., 2., 3.], requires_grad=True)
y = x * 2
v = y[1:]
v.mul_(torch.tensor([10., 100.]))
(y * torch.tensor([1., 2., 3.])).sum().backward()
out = [x.grad.tolist(), type(y.grad_fn).__name__, y.tolist()]
''',
     [[2.0, 40.0, 600.0], 'CopySlices', [2.0, 40.0, 600.0]]),
    ('grad flows into written view', '''
x = torch.tensor([1., 2., 3.], requires_grad=True)
w = torch.tensor([5.], requires_grad=True)
y = x * 1
y[0:1].add_(w * w)
y.sum().backward()
out = [x.grad.tolist(), w.grad.tolist()]
''',
     [[1.0, 1.0, 1.0], [10.0]]),
    ('stale view after base write sees new grad route', '''
x = torch.tensor([1., 2.], requires_grad=True)
y = x * 3
v = y[0]
y.mul_(2)
v.backward()
out = [x.grad.tolist(), v.item()]
''',
     [[6.0, 0.0], 6.0]),
    ('unbind views', '''
x = torch.zeros(2, 2)
a, b = x.unbind(0)
b.fill_(4)
out = [x.tolist()]
''',
     [[[0.0, 0.0], [4.0, 4.0]]]),
    ('detach of view', '''
x = torch.zeros(3)
d = x[1:].detach()
d.fill_(2)
out = [x.tolist()]
''',
     [[0.0, 2.0, 2.0]]),
    ('saved view then base modified', '''
x = torch.tensor([1., 2., 3.], requires_grad=True)
y = x * 1
v = y[:2]
z = v.sin()
y.add_(1)
try:
    z.sum().backward()
    out = ['no error']
except RuntimeError as e:
    out = [str(e)[:160]]
''',
     ['one of the variables needed for gradient computation has been modified by an inplace '
      'operation: [torch.FloatTensor [2]], which is output 0 of AsStrided, is at v']),
    ('version shared', '''
x = torch.zeros(3)
v = x[0:2]
v.add_(1)
x.add_(1)
out = [x._version, v._version]
''',
     [2, 2]),
]


@pytest.mark.parametrize("name, code, expected", CASES, ids=[c[0] for c in CASES])
def test_view_semantics_match_torch(name, code, expected):
    ns = {"torch": gradjit}
    exec(textwrap.dedent(code), ns)
    assert ns["out"] == expected


def test_views_detach_data_and_in_place_changes():
    x = gradjit.zeros(2, 3)
    row = x[0]
    row += 1
    x.view(-1)[4] = 5.0
    x.T[0, 1] = 7.0
    np.testing.assert_allclose(values(x), [[1, 1, 1], [7, 5, 0]])
    np.testing.assert_allclose(values(row), [1, 1, 1])
    assert gradjit.tensor([1.0, 2.0]).T.shape == (2,)
    w = gradjit.tensor([1.0, 2.0], requires_grad=True)
    d = w.detach()
    d[0] = 10.0
    assert w[0].item() == 10.0 and not d.requires_grad
    w.data = gradjit.tensor([3.0, 4.0])
    (w * w).sum().backward()
    np.testing.assert_allclose(values(w.grad), [6.0, 8.0])
