"""The autograd node of a call whose result came from an op Template, made from what the
Template's key fixes (session 21, gradpy2: recording._template_node, Template.node_cls),
and op_sites' retry of a key it had stopped noting.

_template_node (from the direct path, record_node, and from on_op) makes the node for a
call whose Template's one result is a new floating Tensor: the class and the node's inputs
(the Tensor arguments, then a None for a number operand of arithmetic) are worked out on
the Template's first call. Every test runs the same loop with it on and off
(`recording.DIRECT_ENABLED`: off makes each node through _general_node, the former
_node_for) and asserts the same graph (classes, lines, saved tensors, unchecked flags,
Templates, edges) and bitwise the same losses, parameters and gradients after every step,
with counters showing which path made the nodes.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.gradcheck import numeric_grad
from tracer import op_sites, record
from tracer.autograd import recording

F = gj.nn.functional


@pytest.fixture(autouse=True)
def fresh_sites(monkeypatch):
    """Call sites noted afresh (earlier tests' shapes may have marked gradjit's own frames
    unstable): the direct path needs a noted site."""
    monkeypatch.setattr(op_sites, "_SITES", {})
    monkeypatch.setattr(op_sites, "_CHANGES", {})
    monkeypatch.setattr(op_sites, "_REFUSED", {}, raising=False)


def _graph(root) -> list:
    """Each node met from root: class, line, saved tensors (type, version, output nr),
    unchecked flag, whether keyed by its Template, edges (class and output number)."""
    out, seen, stack = [], set(), [root.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        tm = node.template
        out.append((type(node).__name__, node.loc,
                    [(s.type, s.version, s.output_nr) for s in node.saved],
                    node.saves_unchecked, tm is not None and tm[1] == node.output_exprs,
                    [None if e is None else (type(e[0]).__name__, e[1]) for e in node.edges],
                    [e is None for e in node.input_exprs]))
        stack.extend(e[0] for e in node.edges if e is not None)
    return out


def _both(loop) -> tuple:
    """(loop() with inline nodes, the nodes made inline; loop() without them)."""
    before = recording.DIRECT_STATS["nodes"]
    on = loop()
    made = recording.DIRECT_STATS["nodes"] - before
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recording, "DIRECT_ENABLED", False)
        off = loop()
    assert recording.DIRECT_STATS["nodes"] - before == made      # (off: none inline)
    return on, made, off


def _assert_same(on: list, off: list):
    assert len(on) == len(off)
    for (g_on, arrays_on), (g_off, arrays_off) in zip(on, off):
        assert g_on == g_off
        assert len(arrays_on) == len(arrays_off)
        for a, b in zip(arrays_on, arrays_off):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def _arrays(*tensors) -> list:
    """The values (a missing .grad: an empty marker array, compared alike)."""
    return [np.zeros(0, np.int8) if t is None else t.detach().numpy().copy() for t in tensors]


def _mlp_loop(steps: int, sizes=(5, 7, 3), n: int = 6, dtype: str = "float32",
              opt_name: str = "sgd") -> list:
    rng = np.random.default_rng(4)
    d, h, o = sizes
    model = gj.nn.Sequential(gj.nn.Linear(d, h), gj.nn.ReLU(), gj.nn.Linear(h, o))
    if dtype == "float64":
        model = model.double()
    with gj.no_grad():
        for p in model.parameters():
            p.copy_(gj.tensor(rng.standard_normal(p.shape) * 0.3, dtype=p.dtype))
    opt = (gj.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if opt_name == "sgd"
           else gj.optim.AdamW(model.parameters(), lr=0.01))
    x = gj.tensor(rng.standard_normal((n, d)), dtype=dtype)
    y = gj.tensor(rng.integers(0, o, n))
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        graph = _graph(loss)
        loss.backward()
        opt.step()
        params = list(model.parameters())
        out.append((graph, _arrays(loss, *params, *[p.grad for p in params])))
    return out


def test_an_mlp_loop_makes_its_nodes_inline_and_bitwise():
    """linear, relu, linear, cross_entropy: every node after the first steps inline."""
    on, made, off = _both(lambda: _mlp_loop(8))
    _assert_same(on, off)
    assert made >= 4 * 6


def _two_layer_loop(steps: int, sizes=(6, 9, 5, 3), dtype: str = "float32",
                    read_every: int = 3) -> list:
    """two_layer_net_autograd.py's step: clamp(min=0) and pow(2) have number operands."""
    n, d_in, h, d_out = sizes
    rng = np.random.default_rng(2)
    x = gj.tensor(rng.standard_normal((n, d_in)), dtype=dtype)
    y = gj.tensor(rng.standard_normal((n, d_out)), dtype=dtype)
    w1 = gj.tensor(rng.standard_normal((d_in, h)), dtype=dtype, requires_grad=True)
    w2 = gj.tensor(rng.standard_normal((h, d_out)), dtype=dtype, requires_grad=True)
    out = []
    for i in range(steps):
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        graph = _graph(loss)
        if i % read_every == 0:
            loss.item()
        loss.backward()
        arrays = _arrays(loss, w1.grad, w2.grad)
        with gj.no_grad():
            for w in (w1, w2):
                w -= 1e-3 * w.grad
                w.grad.zero_()
        out.append((graph, arrays + _arrays(w1, w2)))
    return out


def test_the_tutorial_loop_with_number_operands_is_inline_and_bitwise():
    on, made, off = _both(lambda: _two_layer_loop(8))
    _assert_same(on, off)
    assert made >= 6 * 6                     # mm, clamp, mm, sub, pow, sum
    clamp = [g for g in on[-1][0] if g[0] == "ClampBackward1"]
    assert clamp and clamp[0][6] == [False]  # (clamp(min=0): no None input; sub's of
    pows = [g for g in on[-1][0] if g[0] == "PowBackward0"]
    assert pows and pows[0][6] == [False]    # a number would be one)


def _dynamic_loop(steps: int) -> list:
    rng = np.random.default_rng(7)
    layers = [gj.nn.Linear(4, 6), gj.nn.Linear(6, 6), gj.nn.Linear(6, 2)]
    params = [p for layer in layers for p in layer.parameters()]
    with gj.no_grad():
        for p in params:
            p.copy_(gj.tensor(rng.standard_normal(p.shape).astype(np.float32) * 0.3))
    opt = gj.optim.SGD(params, lr=1e-2, momentum=0.9)
    x = gj.tensor(rng.standard_normal((5, 4)).astype(np.float32))
    y = gj.tensor(rng.standard_normal((5, 2)).astype(np.float32))
    out = []
    for depth in [0, 1, 2, 3, 1, 0, 3, 2, 2, 1][:steps]:
        hidden = layers[0](x).clamp(min=0)
        for _ in range(depth):
            hidden = layers[1](hidden).clamp(min=0)
        loss = (layers[2](hidden) - y).pow(2).sum() * 0.5 + 1.0
        graph = _graph(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append((graph, _arrays(loss, *params, *[p.grad for p in params])))
    return out


def test_a_dynamic_depth_loop_is_inline_and_bitwise():
    """A layer reused 0-3 times, and `* 0.5 + 1.0` (a None input for the number)."""
    on, made, off = _both(lambda: _dynamic_loop(10))
    _assert_same(on, off)
    assert made > 30
    mul = [g for g in on[-1][0] if g[0] == "MulBackward0"]
    assert mul and mul[0][6] == [False, True] and mul[0][5][1] is None


def _leaf(shape, seed, grad=True):
    rng = np.random.default_rng(seed)
    return gj.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=grad)


def _refusals(x, w) -> list:
    """Calls whose nodes _general_node makes although found by their site: a bool result
    (a comparison) and no operand requiring grad (no node); and an ordinary one."""
    h = x.mm(w)
    above = h > 0.5                          # (bool result: no node)
    quiet = x.detach() * 3.0                 # (nothing requires grad: no node)
    return [h, above, quiet]


def _repeated(fn, *args, times: int = 4, direct: bool = True):
    """fn(*args) called `times` times from one line (a site is keyed by the op's caller and
    its caller), the nodes the last call made inline, that call's result; with direct
    False, every call with DIRECT_ENABLED off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recording, "DIRECT_ENABLED", direct)
        for _ in range(times):
            before = recording.DIRECT_STATS["nodes"]
            out = fn(*args)
    return recording.DIRECT_STATS["nodes"] - before, out


def test_calls_that_get_no_node_fall_back_and_match():
    x, w = _leaf((3, 4), 1, False), _leaf((4, 2), 2)
    made, on = _repeated(_refusals, x, w)
    assert made == 1                                  # (mm only)
    made, off = _repeated(_refusals, x, w, direct=False)
    assert made == 0
    assert [t.grad_fn is not None for t in on] == [True, False, False]
    assert [t.grad_fn is not None for t in off] == [True, False, False]
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    with gj.no_grad():
        made, quiet = _repeated(_refusals, x, w)
    assert made == 0 and quiet[0].grad_fn is None


def _hooked(x, w, b, kind: str) -> list:
    """A step whose inline-made result is then hooked, kept, rewritten in place or saved
    and changed: what backward gives (gradients, hook calls), or the error's text."""
    calls = []
    h = x.mm(w)
    if kind == "hook":
        h.register_hook(lambda g: calls.append(g.shape) or g * 2.0)   # (g: traced)
    elif kind == "retain":
        h.retain_grad()
    elif kind == "inplace":
        h.mul_(2.0)
    r = (h * b).relu()
    if kind == "saved":
        with gj.no_grad():
            b.add_(1.0)
    loss = r.sum()
    try:
        loss.backward()
    except RuntimeError as error:
        b.grad = w.grad = None
        return [str(error)]
    out = _arrays(loss, w.grad) + [np.array(s) for s in calls]
    if kind == "retain":
        out += _arrays(h.grad)
    w.grad = b.grad = None
    return out


@pytest.mark.parametrize("kind", ["hook", "retain", "inplace", "saved"])
def test_a_hook_retain_grad_inplace_or_changed_save_on_an_inline_node(kind):
    x, w = _leaf((3, 4), 1, False), _leaf((4, 2), 2)
    b = _leaf((3, 2), 3)
    made, on = _repeated(lambda: _hooked(x, w, b.detach().clone().requires_grad_(), kind))
    assert made >= 2                                  # (mm, mul; relu, sum)
    made, off = _repeated(lambda: _hooked(x, w, b.detach().clone().requires_grad_(), kind),
                          direct=False)
    assert made == 0
    assert len(on) == len(off)
    for a, c in zip(on, off):
        if isinstance(a, str):
            assert a == c and "modified by an inplace operation" in a
        else:
            np.testing.assert_array_equal(a, c)
    assert len(on) == {"hook": 3, "retain": 3, "inplace": 2, "saved": 1}[kind]


def test_create_graph_through_inline_nodes_is_bitwise():
    """A double backward through nodes made inline: the same second derivatives."""
    def second(w):
        x = gj.tensor(np.linspace(-1, 1, 6).reshape(2, 3))
        loss = (x.mm(w) * 3.0).pow(3).sum()
        (g,) = gj.autograd.grad(loss, w, create_graph=True)
        (gg,) = gj.autograd.grad(g.sum(), w)
        return [g.detach().numpy(), gg.numpy()]
    w = gj.tensor(np.arange(6.0).reshape(3, 2) / 7, requires_grad=True)
    made, on = _repeated(second, w)
    assert made >= 3
    made, off = _repeated(second, w, direct=False)
    assert made == 0
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a, b)
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    # g = 81 x^T (xw)^2, so d(sum g)/dw = 162 x^T (rowsum(x) * xw)
    want = 162 * x.T @ (x.sum(1, keepdims=True) * (x @ w.detach().numpy()))
    np.testing.assert_allclose(on[1], want, rtol=1e-12)


@settings(max_examples=8, deadline=None)
@given(d=st.integers(1, 6), h=st.integers(1, 6), o=st.integers(2, 4), n=st.integers(1, 5),
       dtype=st.sampled_from(["float32", "float64"]),
       opt_name=st.sampled_from(["sgd", "adamw"]))
def test_random_mlps_are_inline_and_bitwise(d, h, o, n, dtype, opt_name):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(op_sites, "_SITES", {})
        patch.setattr(op_sites, "_CHANGES", {})
        on, made, off = _both(lambda: _mlp_loop(5, (d, h, o), n, dtype, opt_name))
    _assert_same(on, off)
    assert made >= 4 * 3


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 6), d_in=st.integers(1, 7), h=st.integers(1, 7),
       d_out=st.integers(1, 4), read_every=st.integers(1, 4))
def test_random_tutorial_loops_are_inline_and_bitwise(n, d_in, h, d_out, read_every):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(op_sites, "_SITES", {})
        patch.setattr(op_sites, "_CHANGES", {})
        on, made, off = _both(lambda: _two_layer_loop(6, (n, d_in, h, d_out), "float32",
                                                      read_every))
    _assert_same(on, off)
    assert made >= 6 * 3


def test_an_inline_steps_gradients_against_float64_finite_differences():
    """The tutorial's step in float64, its nodes made inline: w1's and w2's gradients
    against central differences of the same loss in NumPy."""
    sizes = (4, 5, 6, 3)
    before = recording.DIRECT_STATS["nodes"]
    out = _two_layer_loop(4, sizes, "float64")
    assert recording.DIRECT_STATS["nodes"] - before >= 6 * 2
    rng = np.random.default_rng(2)
    n, d_in, h, d_out = sizes
    x, y = rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))
    w1, w2 = out[2][1][3], out[2][1][4]            # step 4 starts from step 3's updates

    def loss(a, b):
        return ((np.maximum(x @ a, 0) @ b - y) ** 2).sum()
    g1, g2 = out[3][1][1], out[3][1][2]
    np.testing.assert_allclose(g1, numeric_grad(lambda a: loss(a, w2), w1), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(g2, numeric_grad(lambda b: loss(w1, b), w2), rtol=1e-6,
                               atol=1e-6)


# ---- op_sites: a key marked unstable is noted again after _RETRY refused notes ----

def _train(d: int, steps: int = 3) -> list:
    rng = np.random.default_rng(d)
    layer = gj.nn.Linear(d, 2)
    with gj.no_grad():
        for p in layer.parameters():
            p.copy_(gj.tensor(rng.standard_normal(p.shape).astype(np.float32)))
    x = gj.tensor(rng.standard_normal((3, d)).astype(np.float32))
    out = []
    for _ in range(steps):
        loss = layer(x).pow(2).sum()
        loss.backward()
        out.append(_arrays(loss, layer.weight.grad))
        layer.weight.grad = layer.bias.grad = None
    return out


def _hits(steps: int) -> tuple:
    """(site hits of _train(21, steps), its values)."""
    hits = op_sites.STATS["hits"]
    out = _train(21, steps)
    return op_sites.STATS["hits"] - hits, out


def test_an_unstable_linear_site_is_tried_again(monkeypatch):
    """F.linear's frames inside nn.Linear are one site key for every Linear: models of
    many sizes in turn mark it unstable; after _RETRY refused notes it is noted afresh and
    found as often as a site never marked, with the same values as with sites off."""
    monkeypatch.setattr(op_sites, "_RETRY", 20, raising=False)
    for d in range(2, 24):                   # more shapes than one key keeps
        _train(d)
    assert any(v is op_sites._UNSTABLE for v in op_sites._SITES.values())
    for _ in range(8):                       # past _RETRY notes at the unstable key
        _hits(4)
    retried, on = _hits(4)
    monkeypatch.setattr(op_sites, "_SITES", {})
    monkeypatch.setattr(op_sites, "_CHANGES", {})
    for _ in range(2):
        fresh, _ = _hits(4)
    assert retried == fresh > 4
    monkeypatch.setattr(op_sites, "ENABLED", False)
    off = _train(21, 4)
    for a, b in zip(on, off):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_the_node_maker_sees_the_replayed_template():
    """record.NODE_MAKER's maker is record_node, given the Template (its recipe kept)."""
    assert record.NODE_MAKER == (recording.on_op, recording.record_node)
    x, w = _leaf((2, 3), 1, False), _leaf((3, 2), 2)
    made, h = _repeated(lambda: x.mm(w))
    assert made == 1 and h.grad_fn.template is not None
    tm = h.grad_fn.template[0]
    assert tm.node_cls is not None and tm.node_cls is not False
    assert tm.node_cls[0] is type(h.grad_fn)
