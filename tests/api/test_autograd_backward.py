"""The imperative reverse pass: backward(), autograd.grad(), graphs, retain/create_graph.

Expected gradients are derived by hand (noted next to each) or compared with the
functional transform gj.grad, which differentiates the same code through a separate path
(the traced Function and one ir.autodiff.vjp, no autograd nodes).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tracer.autograd.graph import needed_nodes, toposort
from tracer.autograd.nodes import AccumulateGrad


def leaf(data, dtype=None):
    return gj.tensor(data, dtype=dtype, requires_grad=True)


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


# ---- the graph that ops record ------------------------------------------------------------

def test_grad_fn_links_back_to_the_leaves():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    z = (x * y).sum()
    (mul, nr), = z.grad_fn.next_functions
    assert nr == 0 and type(mul).__name__ == "MulBackward0" and mul.name() == "MulBackward0"
    (acc_x, _), (acc_y, _) = mul.next_functions
    assert isinstance(acc_x, AccumulateGrad) and acc_x.variable is x
    assert acc_y.variable is y and type(acc_x).__name__ == "AccumulateGrad"


def test_constant_operand_is_a_none_edge():
    x = leaf([1.0])
    assert (x * 2).grad_fn.next_functions[1] == (None, 0)
    assert (x + gj.tensor([1.0])).grad_fn.next_functions[1] == (None, 0)


def test_integer_results_get_no_grad_fn():
    x = leaf([[1.0, 5.0], [7.0, 2.0]])
    values_, indices = x.max(dim=1)
    assert values_.requires_grad and not indices.requires_grad and indices.grad_fn is None
    assert not (x > 2).requires_grad


# ---- values of gradients ------------------------------------------------------------------

def test_gradient_matches_the_functional_transform():
    w0 = np.array([[0.5, -1.0], [0.25, 2.0]], np.float32)
    x0 = np.array([[1.0, 2.0], [-1.0, 0.5], [3.0, 1.0]], np.float32)

    def loss(w, x):
        h = gj.tanh(x @ w)
        return (h * h.sigmoid()).mean() + (w ** 2).sum() * 0.1

    w = leaf(w0)
    loss(w, gj.tensor(x0)).backward()
    expected = gj.grad(loss)(w0, x0)
    np.testing.assert_allclose(values(w.grad), values(expected), rtol=1e-5, atol=1e-6)


def test_same_tensor_twice_in_one_op():
    x = leaf([3.0, -1.0])
    (x * x).sum().backward()           # d/dx x^2 = 2x
    assert x.grad.tolist() == [6.0, -2.0]


def test_shared_subexpression_sums_both_paths():
    x = leaf(2.0)
    y = x * 3
    z = y * y + y                      # 9x^2 + 3x -> 18x + 3
    z.backward()
    assert x.grad.item() == 39.0


def test_backward_of_a_leaf_with_a_gradient():
    x = leaf([1.0, 2.0])
    x.backward(gj.tensor([5.0, 7.0]))
    assert x.grad.tolist() == [5.0, 7.0]


def test_gradient_seed_of_another_float_dtype_is_converted():
    x = leaf([1.0, 2.0])
    (x * 3).backward(gj.tensor([1.0, 2.0], dtype=gj.float64))
    assert x.grad.dtype == gj.float32 and x.grad.tolist() == [3.0, 6.0]


def test_several_roots_at_once():
    x = leaf([1.0, 2.0])
    a, b = (x * 2).sum(), (x * x).sum()
    gj.autograd.backward([a, b])
    assert x.grad.tolist() == [4.0, 6.0]


def test_backward_inputs_limits_accumulation():
    x, y = leaf([1.0]), leaf([2.0])
    (x * y).sum().backward(inputs=[y])
    assert x.grad is None and y.grad.tolist() == [1.0]


def test_backward_inputs_can_name_a_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * 3
    (h * h).sum().backward(inputs=[h])
    assert h.grad.tolist() == [6.0, 12.0] and x.grad is None


def test_backward_with_empty_inputs_is_an_error():
    with pytest.raises(RuntimeError, match="cannot be empty"):
        leaf([1.0]).sum().backward(inputs=[])


def test_root_value_comes_back_realised_by_backward():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    assert loss._expr.data is None          # nothing computed yet: the graph is lazy
    loss.backward()
    assert loss._expr.data is not None and loss.item() == 5.0


def test_grad_through_integer_indexing_and_gather():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    picked = x[gj.tensor([1, 0]), gj.tensor([2, 0])]      # x[1, 2] and x[0, 0]
    (picked * gj.tensor([10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [[100.0, 0.0, 0.0], [0.0, 0.0, 10.0]]


# ---- accumulation -------------------------------------------------------------------------

def test_accumulation_keeps_the_grad_tensor_object():
    x = leaf([1.0])
    (x * 2).sum().backward()
    g = x.grad
    (x * 3).sum().backward()
    assert x.grad is g and g.tolist() == [5.0] and g._version == 1


def test_assigning_none_restarts_accumulation():
    x = leaf([1.0])
    (x * 2).sum().backward()
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0]


def test_grad_assignment_checks_shape_and_dtype():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = gj.zeros(3)
    with pytest.raises(RuntimeError, match="different type"):
        x.grad = gj.zeros(2, dtype=gj.float64)


# ---- retain_graph -------------------------------------------------------------------------

SECOND = "Trying to backward through the graph a second time"


def test_graph_is_freed_only_on_the_path_taken():
    x, y = leaf([1.0]), leaf([2.0])
    shared = x * y
    a, b = shared.sum(), (shared * 2).sum()
    gj.autograd.grad(b, y, retain_graph=False)       # frees b's path, mul included
    with pytest.raises(RuntimeError, match=SECOND):
        a.backward()


def test_retained_graph_can_be_reused_many_times():
    x = leaf(2.0)
    y = x.exp()
    for i in range(1, 4):
        y.backward(retain_graph=True)
        np.testing.assert_allclose(x.grad.item(), i * np.exp(2.0), rtol=1e-6)


def test_freed_graph_error_names_where_the_op_was_recorded():
    x = leaf([1.0])
    loss = (x * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=SECOND):
        loss.backward()


# ---- create_graph and higher order ---------------------------------------------------------

def test_third_derivative_of_a_cube():
    x = leaf(2.0)
    (d1,) = gj.autograd.grad(x ** 3, x, create_graph=True)       # 3x^2 = 12
    (d2,) = gj.autograd.grad(d1, x, create_graph=True)           # 6x = 12
    (d3,) = gj.autograd.grad(d2, x)                              # 6
    assert (d1.item(), d2.item(), d3.item()) == (12.0, 12.0, 6.0)


def test_create_graph_of_a_constant_gradient_has_no_grad_fn():
    x = leaf([1.0, 2.0, 3.0])
    (g,) = gj.autograd.grad((x * 2).mean(), x, create_graph=True)
    assert g.grad_fn is None and not g.requires_grad
    np.testing.assert_allclose(values(g), [2 / 3] * 3, rtol=1e-6)


def test_gradient_penalty_style_double_backward():
    # loss = sum(w * x^2) + |d loss / d x|^2 ; d/dw = x^2 + 2 * (2 w x) * 2x = x^2 + 8 w x^2
    w, x = leaf([0.5, -1.0]), leaf([2.0, 3.0])
    inner = (w * x * x).sum()
    (gx,) = gj.autograd.grad(inner, x, create_graph=True)
    (inner + (gx * gx).sum()).backward()
    xv, wv = np.array([2.0, 3.0]), np.array([0.5, -1.0])
    np.testing.assert_allclose(values(w.grad), xv ** 2 + 8 * wv * xv ** 2, rtol=1e-6)


def test_hessian_vector_product_matches_functional_hessian():
    x0 = np.array([0.3, -0.7, 1.1], np.float32)
    v0 = np.array([1.0, 2.0, -1.0], np.float32)

    def f(x):
        return (gj.sin(x) * x.sum()).sum()

    x = leaf(x0)
    (g,) = gj.autograd.grad(f(x), x, create_graph=True)
    (hv,) = gj.autograd.grad(g, x, grad_outputs=gj.tensor(v0))
    expected = values(gj.hessian(f)(x0)) @ v0
    np.testing.assert_allclose(values(hv), expected, rtol=1e-5, atol=1e-6)


def test_backward_create_graph_warns_like_pytorch():
    x = leaf(1.0)
    with pytest.warns(UserWarning, match="reference cycle"):
        (x ** 2).backward(create_graph=True)
    assert x.grad.requires_grad


# ---- autograd.grad --------------------------------------------------------------------------

def test_grad_of_several_outputs_and_inputs():
    x, y = leaf(1.0), leaf(2.0)
    gx, gy = gj.autograd.grad([x * y, x + y], [x, y])      # (y + 1, x + 1)
    assert (gx.item(), gy.item()) == (3.0, 2.0)


def test_grad_with_respect_to_an_intermediate():
    x = leaf([1.0, 2.0])
    h = x * 2
    (gh,) = gj.autograd.grad((h ** 2).sum(), h)
    assert gh.tolist() == [4.0, 8.0] and x.grad is None


def test_materialize_grads_gives_zeros_for_unused_inputs():
    x, y = leaf([1.0]), leaf([2.0, 3.0])
    gx, gy = gj.autograd.grad((x * 2).sum(), [x, y], materialize_grads=True)
    assert gx.tolist() == [2.0] and gy.tolist() == [0.0, 0.0]


def test_grad_outputs_shape_is_checked_per_position():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"grad_output\[1\] has a shape of torch.Size\(\[3\]\)"):
        gj.autograd.grad([x.sum(), x * 2], x, grad_outputs=[None, gj.ones(3)])


# ---- retain_grad, hooks, detach, grad mode --------------------------------------------------

def test_retain_grad_on_a_leaf_is_a_no_op_and_on_no_grad_tensor_an_error():
    x = leaf([1.0])
    x.retain_grad()
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        gj.tensor([1.0]).retain_grad()


def test_tensor_hook_rescales_the_gradient_flowing_through():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.register_hook(lambda g: g * 10)
    h.sum().backward()
    assert x.grad.tolist() == [30.0, 30.0]


def test_leaf_hook_runs_before_accumulation_and_can_be_removed():
    x = leaf([1.0, 2.0])
    handle = x.register_hook(lambda g: g + 1)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_detach_shares_value_and_version_but_not_the_graph():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert d.is_leaf and not d.requires_grad and d.tolist() == [1.0, 2.0]
    d.mul_(10)                              # allowed: d does not require grad
    assert x.tolist() == [10.0, 20.0] and x._version == 1


def test_data_property_updates_in_place_without_recording():
    w = leaf([1.0, 2.0])
    w.data.sub_(gj.tensor([0.5, 0.5]))
    assert w.tolist() == [0.5, 1.5] and w.is_leaf and w.requires_grad


def test_set_grad_enabled_function_and_context():
    x = leaf([1.0])
    with gj.set_grad_enabled(False):
        assert not gj.is_grad_enabled()
        assert not (x * 2).requires_grad
    assert gj.is_grad_enabled()
    gj.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        gj.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_enable_grad_as_decorator_inside_no_grad():
    @gj.enable_grad()
    def double(t):
        return t * 2

    with gj.no_grad():
        assert double(leaf([1.0])).requires_grad


def test_requires_grad_flag_of_non_leaf_cannot_be_cleared():
    y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        y.requires_grad = False
    y.requires_grad = True           # a no-op, as in PyTorch


def test_non_leaf_grad_warning_is_silent_after_retain_grad():
    h = leaf([1.0]) * 2
    h.retain_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert h.grad is None


@pytest.mark.parametrize("make, names", [
    (lambda x: 2 * x, ["AccumulateGrad", None]),
    (lambda x: x / 2, ["AccumulateGrad", None]),
    (lambda x: 1 - x, ["AccumulateGrad"]),
    (lambda x: x ** 2, ["AccumulateGrad"]),
    (lambda x: x - gj.tensor([1.0]), ["AccumulateGrad", None]),
], ids=["2 * x", "x / 2", "1 - x", "x ** 2", "x - tensor"])
def test_next_functions_layout_matches_pytorch(make, names):
    """Checked against torch 2.13: numbers show as (None, 0) after the tensors."""
    got = [type(n).__name__ if n is not None else None
           for n, _ in make(leaf([1.0])).grad_fn.next_functions]
    assert got == names


@pytest.mark.parametrize("print_first", [False, True])
def test_gradient_penalty_on_a_network_matches_functional_grad(print_first):
    """create_graph through realised intermediates: the printed forward values are inputs
    of the backward program, and the double backward still reaches the weights."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    x0 = rng.standard_normal((5, 4)).astype(np.float32)

    def net(w, x):
        return (x @ w.T).tanh().sum()

    def total(w, x):
        g = gj.grad(net, argnums=1)(w, x)
        return net(w, x) + (g * g).sum()

    w, x = leaf(w0), leaf(x0)
    out = net(w, x)
    if print_first:
        repr(out)
    (gx,) = gj.autograd.grad(out, x, create_graph=True)
    (out + (gx * gx).sum()).backward()
    np.testing.assert_allclose(values(w.grad), values(gj.grad(total)(w0, x0)), rtol=1e-5,
                               atol=1e-6)


class _FakeNode:
    def __init__(self, edges):
        self.edges = edges


def _reference_toposort(roots):
    """Reverse post-order of a recursive depth-first walk, children in edge order."""
    order, seen = [], set()

    def visit(node):
        seen.add(node)
        for e in node.edges:
            if e is not None and e[0] not in seen:
                visit(e[0])
        order.append(node)
    for r in roots:
        if r not in seen:
            visit(r)
    return order[::-1]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_toposort_is_the_reverse_postorder_of_a_depth_first_walk(data):
    """graph.toposort (iterative, on parallel stacks) gives the recursive walk's order on
    random DAGs with repeated and missing edges, and every node precedes the nodes it sends
    gradients to."""
    n = data.draw(st.integers(1, 12))
    nodes = [None] * n
    for i in reversed(range(n)):             # edges go to later-made (higher) nodes only
        targets = data.draw(st.lists(st.one_of(st.none(), st.integers(i + 1, n - 1))
                                     if i + 1 < n else st.none(), max_size=4))
        nodes[i] = _FakeNode([None if t is None else (nodes[t], 0) for t in targets])
    roots = [nodes[i] for i in data.draw(st.lists(st.integers(0, n - 1), min_size=1,
                                                  max_size=3))]
    order = toposort(roots)
    assert order == _reference_toposort(roots)
    pos = {node: k for k, node in enumerate(order)}
    for node in order:
        for e in node.edges:
            if e is not None:
                assert pos[node] < pos[e[0]]
    # needed_nodes: a node runs iff one of its edges is a target or leads to a needed node
    target = (order[-1], 0)
    needed = needed_nodes(order, {target})
    for node in order:
        expect = any(e is not None and (e == target or e[0] in needed) for e in node.edges)
        assert (node in needed) == expect
