"""In-place ops: values, version counters, the nodes they record, and PyTorch's errors."""

import numpy as np
import pytest

import gradjit as gj

LEAF = "a leaf Variable that requires grad is being used in an in-place operation."
MODIFIED = "one of the variables needed for gradient computation has been modified"
# PyTorch 2.13.0's full text
INPLACE = ("one of the variables needed for gradient computation has been modified by an "
           "inplace operation: ")
INPLACE_EXP_FULL = (
    INPLACE + "[torch.FloatTensor [3]], which is output 0 of Exp, is at version 1; expected "
    "version 0 instead. Hint: enable anomaly detection to find the operation that failed to "
    "compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def leaf(data, dtype=None):
    return gj.tensor(data, dtype=dtype, requires_grad=True)


INPLACE_VALUES = [
    ("add_", lambda t: t.add_(gj.tensor([1.0, 1.0, 1.0]), alpha=2), [3.0, 0.0, 5.0]),
    ("sub_", lambda t: t.sub_(1), [0.0, -3.0, 2.0]),
    ("mul_", lambda t: t.mul_(gj.tensor([2.0, 3.0, 4.0])), [2.0, -6.0, 12.0]),
    ("div_", lambda t: t.div_(2), [0.5, -1.0, 1.5]),
    ("zero_", lambda t: t.zero_(), [0.0, 0.0, 0.0]),
    ("fill_", lambda t: t.fill_(7.5), [7.5, 7.5, 7.5]),
    ("copy_", lambda t: t.copy_(gj.tensor([9, 8, 7])), [9.0, 8.0, 7.0]),
    ("clamp_", lambda t: t.clamp_(-1.0, 2.0), [1.0, -1.0, 2.0]),
    ("clamp_ min", lambda t: t.clamp_(min=0.0), [1.0, 0.0, 3.0]),
    ("+=", lambda t: t.__iadd__(1), [2.0, -1.0, 4.0]),
    ("-=", lambda t: t.__isub__(gj.tensor([1.0, 1.0, 1.0])), [0.0, -3.0, 2.0]),
    ("*=", lambda t: t.__imul__(-1), [-1.0, 2.0, -3.0]),
    ("/=", lambda t: t.__itruediv__(4), [0.25, -0.5, 0.75]),
    ("neg_", lambda t: t.neg_(), [-1.0, 2.0, -3.0]),
    ("pow_", lambda t: t.pow_(2), [1.0, 4.0, 9.0]),
    ("addcmul_", lambda t: t.addcmul_(gj.ones(3), gj.full((3,), 2.0), value=0.5),
     [2.0, -1.0, 4.0]),
    ("lerp_", lambda t: t.lerp_(gj.zeros(3), 0.5), [0.5, -1.0, 1.5]),
]


@pytest.mark.parametrize("name, op, expected", INPLACE_VALUES,
                         ids=[c[0] for c in INPLACE_VALUES])
def test_inplace_value_and_version(name, op, expected):
    t = gj.tensor([1.0, -2.0, 3.0])
    out = op(t)
    assert out is t and t._version == 1
    np.testing.assert_allclose(t.tolist(), expected, rtol=1e-6)


def test_inplace_int_tensor_cannot_take_a_float_result():
    t = gj.tensor([1, 2])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        t += 1.5


def test_inplace_cannot_broadcast_the_target():
    t = gj.zeros(3)
    with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the "
                                           r"broadcast shape \[2, 3\]"):
        t.add_(gj.ones(2, 3))


def test_iadd_rebinds_to_the_same_object():
    t = gj.tensor([1.0])
    alias = t
    t += 1
    assert alias is t and t.tolist() == [2.0]


@pytest.mark.parametrize("op", [lambda a: a.fill_(1.0), lambda a: a.clamp_(0, 1),
                                lambda a: a.__setitem__(0, 5.0), lambda a: a.exp_()],
                         ids=["fill_", "clamp_", "setitem", "exp_"])
def test_more_inplace_ops_on_a_leaf_requiring_grad(op):
    with pytest.raises(RuntimeError) as info:
        op(leaf([1.0, 2.0]))
    assert str(info.value) == LEAF


def test_no_grad_update_of_a_leaf_is_not_recorded():
    w = leaf([1.0, 2.0])
    with gj.no_grad():
        w.mul_(2)
        w[0] = 10.0
    assert w.is_leaf and w.grad_fn is None and w.requires_grad and w._version == 2
    assert w.tolist() == [10.0, 4.0]
    (w * w).sum().backward()
    assert w.grad.tolist() == [20.0, 8.0]


def test_no_grad_update_of_a_non_leaf_keeps_its_grad_fn():
    x = leaf([1.0, 2.0])
    y = x * 2
    with gj.no_grad():
        y.add_(100)
    assert type(y.grad_fn).__name__ == "MulBackward0" and y.tolist() == [102.0, 104.0]
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_inplace_on_a_plain_tensor_with_a_grad_operand_makes_it_a_non_leaf():
    x = leaf([1.0, 2.0])
    acc = gj.zeros(2)
    acc.add_(x * x)
    assert not acc.is_leaf and type(acc.grad_fn).__name__ == "AddBackward0"
    acc.sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


@pytest.mark.parametrize("op, name", [
    (lambda y: y.zero_(), "ZeroBackward0"), (lambda y: y.fill_(2.0), "FillBackward2"),
    (lambda y: y.copy_(gj.ones(2)), "CopyBackwards"), (lambda y: y.clamp_(0, 1), "ClampBackward1"),
    (lambda y: y.div_(2), "DivBackward0"), (lambda y: y.sub_(1), "SubBackward0"),
    (lambda y: y.__setitem__(0, 3.0), "CopySlices"),
])
def test_grad_fn_of_inplace_ops_on_non_leaves(op, name):
    y = leaf([0.5, 2.0]) * 1
    op(y)
    assert type(y.grad_fn).__name__ == name


def test_gradients_through_inplace_chain():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    y += 1                     # add saves nothing: fine
    y.mul_(y.detach().clone())  # d/dy_old (y_old * c) = c = 2x + 1
    y.clamp_(max=30.0)         # 3: (7 * 7 = 49) clamps to 30, gradient 0 there
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 10.0, 0.0]


def test_operand_that_aliases_the_target_is_caught():
    """y.mul_(y.detach()) saves an alias of y, which the mul_ itself then modifies."""
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    y.mul_(y.detach())
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    assert str(info.value).startswith(MODIFIED + " by an inplace operation: [torch.FloatTensor "
                                      "[3]] is at version 1; expected version 0 instead.")


def test_zero_and_fill_block_the_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.zero_()
    (y + x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_copy_routes_the_gradient_to_the_source():
    x, src = leaf([1.0, 2.0]), leaf([5.0])
    y = x * 1
    y.copy_(src * 2)           # broadcast from shape (1,)
    (y * gj.tensor([1.0, 10.0])).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0] and src.grad.tolist() == [22.0]


# ---- x[key] = value ---------------------------------------------------------------------

SETITEM = [
    ("int", 1, 9.0),
    ("slice", slice(1, None), 9.0),
    ("row", (0,), gj.tensor([7.0, 8.0, 9.0])),
    ("column broadcast", (slice(None), 2), gj.tensor([5.0, 6.0])),
    ("mask", "mask", 0.0),
    ("index list", ([0, 1], [2, 0]), gj.tensor([-1.0, -2.0])),
    ("ellipsis", (Ellipsis, 0), 4.0),
]


@pytest.mark.parametrize("name, key, value", SETITEM, ids=[c[0] for c in SETITEM])
def test_setitem_matches_numpy(name, key, value):
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = gj.tensor(base)
    if key == "mask":
        key = gj.tensor(base > 2.5)
        np_key = base > 2.5
    else:
        np_key = key
    expected = base.copy()
    expected[np_key] = np.asarray(value.tolist() if isinstance(value, gj.Tensor) else value)
    t[key] = value
    assert t.tolist() == expected.tolist() and t._version == 1


def test_setitem_repeated_index_keeps_the_last_write():
    t = gj.zeros(3)
    t[gj.tensor([0, 2, 0])] = gj.tensor([1.0, 2.0, 3.0])
    assert t.tolist() == [3.0, 0.0, 2.0]


def test_setitem_gradients():
    x, v = leaf([1.0, 2.0, 3.0]), leaf([10.0])
    y = x * 2
    y[1] = v * 3
    (y * gj.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 6.0] and v.grad.tolist() == [6.0]


MASK_FILLS = [                    # value, mask over the leading dims
    (0.0, (2, 3)),
    (gj.tensor(7.0), (2, 3)),
    (gj.tensor([1.0, 2.0, 3.0]), (2,)),           # one row's worth, every masked row
    (gj.tensor([[1.0, 2.0, 3.0]]), (2,)),         # PyTorch drops the leading 1
    (5, (2,)),
]


@pytest.mark.parametrize("value, mask_shape", MASK_FILLS)
def test_a_mask_fill_leaves_the_mask_unread(value, mask_shape):
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    mask_np = (base > 2.5) if len(mask_shape) == 2 else np.array([False, True])
    t = gj.tensor(base)
    mask = gj.tensor(base).sum(dim=1) > 7.0 if len(mask_shape) == 1 else gj.tensor(base) > 2.5
    t[mask] = value
    assert mask._expr.data is None                # pending: the fill is where(mask, v, t)
    expected = base.copy()
    expected[mask_np] = np.asarray(value.tolist() if isinstance(value, gj.Tensor) else value)
    assert t.tolist() == expected.tolist() and t._version == 1


def test_a_mask_fill_with_values_per_element_still_scatters():
    t = gj.zeros(4)
    t[gj.tensor([True, False, True, False])] = gj.tensor([1.0, 2.0])
    assert t.tolist() == [1.0, 0.0, 2.0, 0.0]
    with pytest.raises((RuntimeError, IndexError, ValueError)):
        gj.zeros(4)[gj.tensor([True, False, True, False])] = gj.tensor([1.0, 2.0, 3.0])


def test_mask_fill_gradients_go_to_the_unmasked_input_and_the_value():
    x, v = leaf([1.0, 2.0, 3.0, 4.0]), leaf(10.0)
    y = x * 2
    y[x.detach() > 2.5] = v * 3
    (y * gj.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 0.0, 0.0] and v.grad.tolist() == 21.0


# ---- version counters and saved tensors ---------------------------------------------------

def test_versions_count_every_inplace_op():
    t = gj.zeros(2)
    for k in range(1, 4):
        t.add_(1)
        assert t._version == k
    assert gj.zeros(2)._version == 0


def test_clone_has_its_own_version_counter():
    t = gj.zeros(2)
    c = t.clone()
    c.add_(1)
    assert t._version == 0 and c._version == 1 and t.tolist() == [0.0, 0.0]


def test_saved_log_input_modified_after_use():
    x = leaf([1.0, 2.0])
    h = x + 1
    y = h.log()                # log saves its input
    h.mul_(2)
    with pytest.raises(RuntimeError, match=MODIFIED + r".*output 0 of Mul, is at version 1"):
        y.sum().backward()


def test_modification_after_backward_is_harmless():
    x = leaf([1.0, 2.0])
    h = x + 1
    h.log().sum().backward()
    h.mul_(2)
    np.testing.assert_allclose(x.grad.tolist(), [0.5, 1 / 3], rtol=1e-6)


def test_error_notes_where_the_saving_op_was_recorded():
    x = leaf([1.0, 2.0])
    b = x.exp()                # the op that saved b (this line)
    b.add_(1)
    with pytest.raises(RuntimeError) as info:
        b.sum().backward()
    notes = getattr(info.value, "__notes__", [])
    assert any("test_inplace.py" in n and "ExpBackward0" in n for n in notes)


def test_detached_alias_modification_invalidates_saved_value():
    x = leaf([1.0, 2.0])
    y = x * 1
    z = y.sin()
    y.detach().zero_()         # shares y's version counter, as in PyTorch
    with pytest.raises(RuntimeError, match=MODIFIED):
        z.sum().backward()


# ---- setitem under the transforms ------------------------------------------------------------

def test_setitem_with_traced_indices_and_masks():
    a = np.arange(6.0).reshape(3, 2)

    def put(x, key, v):
        y = x.clone()
        y[key] = v
        return y

    np.testing.assert_allclose(np.asarray(gj.jit(put)(a, np.int64(-1), np.float64(5.0))),
                               [[0, 1], [2, 3], [5, 5]])
    np.testing.assert_allclose(np.asarray(gj.jit(put)(a, np.array([0, 2]), np.float64(-1.0))),
                               [[-1, -1], [2, 3], [-1, -1]])
    clipped = gj.jit(lambda x: put(x, x > 2, 0.0))(a)
    np.testing.assert_allclose(np.asarray(clipped), np.where(a > 2, 0, a))
    g = gj.grad(lambda x, v: (put(x, np.int64(1), v) * a).sum(), argnums=(0, 1))(
        a, np.array([7.0, 8.0]))
    np.testing.assert_allclose(np.asarray(g[0]), [[0, 1], [0, 0], [4, 5]])
    np.testing.assert_allclose(np.asarray(g[1]), [2, 3])
    per_row = gj.vmap(lambda x, i: put(x, i, 0.0))(a, np.array([0, 1, 0]))
    np.testing.assert_allclose(np.asarray(per_row), [[0, 1], [2, 0], [0, 5]])
    with pytest.raises(gj.TracerError, match="with a traced mask the values must be"):
        gj.jit(lambda x: put(x, x > 2, gj.tensor([1.0, 2.0])))(a)


# ---- in-place ops: PyTorch's errors, checked against torch 2.13.0 ----------------------------

LEAF_OPS = {
    "add_": lambda a: a.add_(1),
    "+=": lambda a: a.__iadd__(1),
    "mul_": lambda a: a.mul_(2),
    "sub_": lambda a: a.sub_(1),
    "div_": lambda a: a.div_(2),
    "zero_": lambda a: a.zero_(),
    "copy_": lambda a: a.copy_(gj.ones(2)),
}


@pytest.mark.parametrize("op", LEAF_OPS.values(), ids=LEAF_OPS.keys())
def test_inplace_on_leaf_requiring_grad_is_an_error(op):
    with pytest.raises(RuntimeError) as info:
        op(leaf([1.0, 2.0]))
    assert str(info.value) == LEAF


def test_inplace_on_leaf_is_allowed_under_no_grad():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    with gj.no_grad():
        w -= 0.1 * w.grad
    assert repr(w) == "tensor([0.8000, 1.6000], requires_grad=True)"
    assert w.is_leaf


def test_inplace_on_saved_exp_output_full_message():
    a = leaf([1.0, 2.0, 3.0])
    b = a.exp()
    b.add_(1)
    with pytest.raises(RuntimeError) as info:
        b.sum().backward()
    assert str(info.value) == INPLACE_EXP_FULL


def _sin_input_modified():
    b = leaf([1.0, 2.0, 3.0]) * 2
    c = b.sin()
    b.mul_(3)
    return c.sum()


def _sigmoid_output_modified():
    b = leaf([1.0, 2.0, 3.0]).sigmoid()
    b *= 2
    return b.sum()


def _tanh_output_overwritten():
    b = leaf([[1.0, 2.0], [3.0, 4.0]]).tanh()
    b.copy_(gj.zeros(2, 2))
    return b.sum()


def _exp_output_twice_modified_f64():
    b = leaf([1.0, 2.0, 3.0], dtype=gj.float64).exp()
    b.sub_(1)
    b.div_(2)
    return b.sum()


def _mul_operand_modified():
    x = gj.tensor([3.0, 4.0])
    y = (leaf([1.0, 2.0]) * x).sum()
    x += 1
    return y


def _matmul_operand_modified():
    x = gj.tensor([[3.0, 4.0], [5.0, 6.0]])
    y = (x @ leaf([[1.0, 2.0], [3.0, 4.0]])).sum()
    x.mul_(2)
    return y


SAVED_TENSOR_CASES = {
    "sin input": (_sin_input_modified,
                  "[torch.FloatTensor [3]], which is output 0 of Mul, is at version 1;"),
    "sigmoid output": (_sigmoid_output_modified,
                       "[torch.FloatTensor [3]], which is output 0 of Sigmoid, is at version 1;"),
    "tanh output": (_tanh_output_overwritten,
                    "[torch.FloatTensor [2, 2]], which is output 0 of Tanh, is at version 1;"),
    "exp output, f64, twice": (
        _exp_output_twice_modified_f64,
        "[torch.DoubleTensor [3]], which is output 0 of Exp, is at version 2;"),
    "mul operand": (_mul_operand_modified, "[torch.FloatTensor [2]] is at version 1;"),
    "matmul operand": (_matmul_operand_modified, "[torch.FloatTensor [2, 2]] is at version 1;"),
}


@pytest.mark.parametrize("case", SAVED_TENSOR_CASES.values(), ids=SAVED_TENSOR_CASES.keys())
def test_inplace_on_saved_tensor_is_caught_at_backward(case):
    build_loss, detail = case
    loss = build_loss()
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    assert str(info.value).startswith(INPLACE + detail + " expected version 0 instead.")


INPLACE_ALLOWED = {
    "add after mul (mul saved only its constant)": (lambda x: _add_inplace(x * 2), [2.0, 2.0]),
    "mul after add (add saves nothing)": (lambda x: _mul_inplace(x + 1), [2.0, 2.0]),
}


def _add_inplace(t):
    t += 1
    return t


def _mul_inplace(t):
    t.mul_(2)
    return t


@pytest.mark.parametrize("case", INPLACE_ALLOWED.values(), ids=INPLACE_ALLOWED.keys())
def test_inplace_on_unsaved_tensor_is_fine(case):
    build, grad = case
    x = leaf([1.0, 2.0])
    out = build(x)
    assert type(out.grad_fn).__name__ in ("AddBackward0", "MulBackward0")
    out.sum().backward()
    assert x.grad.tolist() == grad
