"""Programs on expands, views of expands and in-place writes whose operand overlaps the
tensor written, run unchanged on gradjit (tests/api/test_expand_views.py,
tests/api/test_inplace_overlap.py) and on PyTorch 2.13 (recorded/record_overlap.py writes
recorded/overlap.json). Each takes the torch module and returns what it saw: values,
gradients, or PyTorch's error class and text (without gradjit's "(at file:line)")."""


def grads(*ts):
    return [t.grad.tolist() for t in ts]


def _outcome(f, operand, seen) -> list:
    """["ok", seen's values] after f(operand), or PyTorch's RuntimeError text."""
    try:
        f(operand)
        return ["ok", seen.tolist()]
    except RuntimeError as err:
        return ["RuntimeError", str(err).split(" (at ")[0]]


def write_base_read_expand(torch):
    h = torch.tensor([1., 2., 3.], dtype=torch.float64, requires_grad=True)
    b = h * 1
    e = b.expand(2, 3)
    b.mul_(3)
    (e * torch.arange(6., dtype=torch.float64).reshape(2, 3)).sum().backward()
    return e.tolist(), grads(h)


def views_of_expand(torch):
    h = torch.tensor([[1.], [2.], [3.]], dtype=torch.float64, requires_grad=True)
    b = h * 1
    e = b.expand(3, 2)
    s, t, r, rv = e[1:, :1], e.t(), e.t().reshape(6), e.reshape(3, 2, 1)
    b.add_(10)
    w = torch.arange(6., dtype=torch.float64)
    loss = (s * 2).sum() + (t * w.reshape(2, 3)).sum() + (r * w).sum() + (rv.reshape(6) * w).sum()
    loss.backward()
    return s.tolist(), t.tolist(), r.tolist(), rv.tolist(), grads(h)


def write_part_of_expand(torch):
    h = torch.tensor([1., 2., 3.], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([7., 8., 9.], dtype=torch.float64, requires_grad=True)
    b = h * 1
    e = b.expand(4, 3)
    e[1] = v * 2
    e2 = b.expand(2, 3)
    e2[0, 2] = 5.
    (e * torch.arange(12., dtype=torch.float64).reshape(4, 3)).sum().backward()
    return e.tolist(), b.tolist(), e2.tolist(), grads(h, v)


def fills_of_expand(torch):
    h = torch.arange(3.)
    e = h.expand(2, 3)
    e.fill_(4.)
    a = h.tolist()
    e.zero_()
    return a, h.tolist(), e.tolist()


def refused_writes_to_expand(torch):
    out = []
    for f in (lambda e: e.add_(1), lambda e: e.copy_(torch.ones(3, 3)),
              lambda e: e.__setitem__((slice(None), 0), 1.), lambda e: e.mul_(e),
              lambda e: e.t()[1:].sub_(1), lambda e: e.reshape(9).add_(1)):
        h = torch.arange(3.)
        out.append(_outcome(f, h.expand(3, 3), h))
    return out


def expand_of_expand_and_views(torch):
    h = torch.arange(4.).reshape(2, 2)
    e = h[:, :1].expand(2, 3).unsqueeze(0).expand(2, 2, 3)
    p = e.permute(2, 0, 1)[1:]
    h.mul_(-1)
    return e.tolist(), p.tolist()


def overlap_sources(torch):
    cases = [
        lambda x: x.add_(x[0]), lambda x: x.copy_(x.t()), lambda x: x.mul_(x[0:1]),
        lambda x: x[1:].add_(x[:1]), lambda x: x[:1].copy_(x[1:]), lambda x: x.add_(x),
        lambda x: x.view(4).add_(x.view(4)), lambda x: x.t().add_(x),
        lambda x: x.addcmul_(x.t(), x), lambda x: x.clamp_(min=x.t()),
        lambda x: x.sub_(x[0, 0]), lambda x: x.copy_(x[1, 1]), lambda x: x.fill_(x[1, 1]),
        lambda x: x.__setitem__(torch.tensor([1, 0]), x),
        lambda x: x.__setitem__(torch.tensor([1, 0]), x[0]),
        lambda x: x.__setitem__(0, x[1]), lambda x: x.__setitem__(slice(None), x),
        lambda x: x.__setitem__(0, x[:, 0]), lambda x: x.__setitem__(x > 1, x[0, 0]),
        lambda x: x.view(4).__setitem__(torch.tensor([0, 1]), x.view(4)[2:]),
        lambda x: x.lerp_(x.t(), 0.5), lambda x: x.div_(x.detach()),
        lambda x: x.add_(x.detach()[0]),
    ]
    out = []
    for f in cases:
        x = torch.arange(4.).reshape(2, 2)
        out.append(_outcome(f, x, x))
    return out


def overlap_out(torch):
    cases = [
        lambda x: torch.add(x, x, out=x), lambda x: torch.mul(x[0], 2, out=x[1]),
        lambda x: torch.matmul(x, x, out=x), lambda x: torch.sub(x.t(), 1, out=x),
        lambda x: torch.cat([x[:1], x[:1]], out=x), lambda x: torch.div(x[0], x[1], out=x[0]),
        lambda x: torch.add(x[1], x[0], out=x.view(4)[1:3]),
    ]
    out = []
    for f in cases:
        x = torch.arange(4.).reshape(2, 2)
        out.append(_outcome(f, x, x))
    return out


PROGRAMS = [write_base_read_expand, views_of_expand, write_part_of_expand, fills_of_expand,
            refused_writes_to_expand, expand_of_expand_and_views, overlap_sources, overlap_out]


def run(program, torch):
    """program's result, or the class and text of what it raised."""
    try:
        return program(torch)
    except Exception as err:        # (recorded as the outcome)
        return ["RAISED", type(err).__name__, str(err).split(" (at ")[0]]
