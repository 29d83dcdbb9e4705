"""The cases of tests/api/test_names2.py, shared with record_names2.py (run under real PyTorch
2.13): each takes the torch module (gradjit or PyTorch) and returns a tensor or raises.
Never imports torch."""


def _x(torch, shape=(3, 4), dtype=None):
    n = 1
    for s in shape:
        n *= s
    return torch.arange(float(n), dtype=dtype or torch.float64).reshape(shape) * 0.5 - 1.0


def value_cases(torch):
    """name -> f(torch): the value (or the error) of each."""
    ix = torch.tensor
    src = torch.arange(1.0, 11.0).reshape(2, 5)
    return {
        "rsub_scalar": lambda: torch.rsub(_x(torch), 2.0, alpha=3),
        "rsub_int": lambda: torch.rsub(ix([1, 2]), ix([5, 7]), alpha=2),
        "rsub_int_float_alpha": lambda: torch.rsub(ix([1]), 2, alpha=0.5),
        "rsub_bool": lambda: torch.rsub(ix([True]), ix([False])),
        "rsub_broadcast": lambda: torch.rsub(_x(torch, (3, 1)), _x(torch, (4,))),
        "real": lambda: _x(torch).real,
        "imag": lambda: _x(torch).imag,
        "imag_int": lambda: ix([1, 2]).imag,
        "unfold_1d": lambda: torch.arange(10.0).unfold(0, 3, 2),
        "unfold_dim1": lambda: _x(torch, (3, 5)).unfold(1, 2, 1),
        "unfold_dim0": lambda: _x(torch, (3, 4)).unfold(0, 2, 1),
        "unfold_neg_dim": lambda: _x(torch, (2, 3, 4)).unfold(-2, 2, 2),
        "unfold_scalar": lambda: ix(5.0).unfold(0, 1, 1),
        "unfold_empty": lambda: torch.arange(10.0).unfold(0, 0, 1),
        "unfold_int": lambda: torch.arange(7).unfold(0, 4, 3),
        "unfold_too_big": lambda: torch.arange(10.0).unfold(0, 11, 1),
        "unfold_step0": lambda: torch.arange(10.0).unfold(0, 3, 0),
        "unfold_bad_dim": lambda: torch.arange(10.0).unfold(2, 1, 1),
        "unfold_neg_size": lambda: torch.arange(10.0).unfold(0, -1, 1),
        "unfold_scalar_too_big": lambda: ix(5.0).unfold(0, 2, 1),
        "scatter_src": lambda: torch.zeros(3, 5).scatter(0, ix([[0, 1, 2, 0]]), src),
        "scatter_dim1": lambda: torch.zeros(3, 5).scatter(1, ix([[2, 4], [0, 1], [3, 3]]),
                                                          src.reshape(5, 2)[:3]),
        "scatter_value": lambda: torch.zeros(3, 5).scatter(1, ix([[2], [3]]), 1.23),
        "scatter_value_kw": lambda: torch.scatter(torch.zeros(3, 5), 0, ix([[0, 1, 2, 0]]),
                                                  value=2.0),
        "scatter_add": lambda: torch.ones(3, 5).scatter(0, ix([[0, 1, 2, 0]]), src,
                                                        reduce="add"),
        "scatter_add_dup": lambda: torch.ones(3, 2).scatter(0, ix([[0, 0], [0, 1]]),
                                                            src[:, :2], reduce="add"),
        "scatter_multiply": lambda: torch.full((2, 4), 2.0).scatter(
            1, ix([[2], [3]]), 1.23, reduce="multiply"),
        "scatter_multiply_dup": lambda: torch.full((2, 4), 2.0).scatter(
            1, ix([[2, 2, 1], [3, 0, 3]]), src[:, :3], reduce="multiply"),
        "scatter_dup_last_wins": lambda: torch.zeros(4).scatter(0, ix([1, 1, 1, 2]),
                                                                ix([5.0, 6.0, 7.0, 8.0])),
        "scatter_long_value": lambda: torch.zeros(3, 5, dtype=torch.long).scatter(
            0, ix([[0, 1, 2, 0]]), 2.7),
        "scatter_int32_index": lambda: torch.zeros(4).scatter(0, ix([3, 0], dtype=torch.int32),
                                                              ix([1.0, 2.0])),
        "scatter_torch_fn": lambda: torch.scatter(torch.zeros(2, 3), 1, ix([[2], [0]]),
                                                  ix([[9.0], [8.0]])),
        "scatter_bad_reduce": lambda: torch.zeros(3, 5).scatter(0, ix([[0]]), src, reduce="x"),
        "scatter_float_index": lambda: torch.zeros(3, 5).scatter(0, ix([[0.0]]), src),
        "scatter_out_of_range": lambda: torch.zeros(3, 5).scatter(0, ix([[5]]), src),
        "scatter_negative": lambda: torch.zeros(3, 5).scatter(0, ix([[-1]]), src),
        "scatter_dtype": lambda: torch.zeros(3, 5).scatter(0, ix([[0]]), src.double()),
        "index_fill_number": lambda: _x(torch).index_fill(1, ix([0, 2]), -1.0),
        "index_fill_tensor": lambda: torch.index_fill(_x(torch), 0, ix([1]), ix(7.0)),
        "index_fill_negative": lambda: _x(torch).index_fill(0, ix([-1]), 1.0),
        "index_fill_scalar_index": lambda: _x(torch).index_fill(1, ix(3), 4.0),
        "index_fill_dup": lambda: _x(torch).index_fill(1, ix([1, 1, -3]), 0.0),
        "index_fill_int": lambda: torch.arange(4).index_fill(0, ix([1]), 2.7),
        "index_fill_bool": lambda: ix([True, False, True]).index_fill(0, ix([0]), False),
        "index_fill_0d": lambda: ix(2.0).index_fill(0, ix([0]), 5.0),
        "index_fill_inplace": lambda: _x(torch).index_fill_(0, ix([0, 2]), 5.0),
        "scatter_inplace": lambda: _scatter_twice(torch.zeros(3), ix),
        "scatter_inplace_leaf": lambda: torch.zeros(3, requires_grad=True).scatter_(
            0, ix([1]), 1.0),
        "index_fill_1d_value": lambda: _x(torch).index_fill(0, ix([1]), ix([7.0])),
        "index_fill_out_of_range": lambda: _x(torch).index_fill(0, ix([3]), 1.0),
        "index_fill_2d_index": lambda: _x(torch).index_fill(0, ix([[1]]), 1.0),
        "index_fill_float_index": lambda: _x(torch).index_fill(0, ix([1.0]), 1.0),
        "index_fill_int32_index": lambda: _x(torch).index_fill(0, ix([1], dtype=torch.int32),
                                                               1.0),
        "bool_pow_tensor": lambda: ix([True, False]) ** ix([True, True]),
        "bool_pow_method": lambda: ix([True, False]).pow(ix([True, True])),
        "bool_rpow": lambda: True ** ix([True, False]),
        "bool_pow_number": lambda: ix([True, False]) ** True,
        "bool_ipow": lambda: _ipow(ix([True, False]), ix([True, True])),
        "int_iand_float": lambda: _iand(ix([1, 2]), 0.5),
        "int_ior_float": lambda: _ior(ix([1, 2]), 1.5),
        "int_and_float": lambda: ix([1, 2]) & 0.5,
        "float_iand_int": lambda: _iand(ix([1.0, 2.0]), 1),
        "int_iand_int": lambda: _iand(ix([6, 3]), 2),
    }


def _scatter_twice(x, ix):
    assert x.scatter_(0, ix([2, 0]), ix([1.0, 2.0])) is x
    x.scatter_(0, ix([1]), value=7.0)
    return x.scatter_(0, ix([1, 2]), 2.0, reduce="multiply")


def _ipow(a, b):
    a **= b
    return a


def _iand(a, b):
    a &= b
    return a


def _ior(a, b):
    a |= b
    return a


def grad_cases(torch, F):
    """name -> f(torch, x): differentiable in x (float64, shape (3, 4))."""
    ix = torch.tensor
    return {
        "unfold": lambda x: x.unfold(1, 2, 1),
        "unfold_overlap": lambda x: x.unfold(0, 2, 1) * x.unfold(0, 2, 1),
        "scatter_self": lambda x: x.scatter(0, ix([[0, 1, 2, 0]]), torch.ones(1, 4,
                                                                              dtype=x.dtype)),
        "scatter_src": lambda x: torch.zeros(4, 5, dtype=x.dtype).scatter(
            1, ix([[4, 0, 2, 1]] * 3), x),
        "scatter_value": lambda x: torch.scatter(x, 1, ix([[1], [3], [0]]), value=2.0),
        "scatter_add": lambda x: x.scatter(0, ix([[0, 0, 2, 0]]), x[:1], reduce="add"),
        "index_fill": lambda x: x.index_fill(1, ix([0, 2]), -1.0),
        "index_fill_value": lambda x: _x(torch).index_fill(0, ix([0, 2]), x[1, 1]),
        "rsub": lambda x: torch.rsub(x, x[:1] * 3.0, alpha=2),
        "rsub_scalar": lambda x: torch.rsub(x, 2.0),
        "real": lambda x: x.real * x,
        "l1_mean": lambda x: F.l1_loss(x, _x(torch).flip(0)),
        "l1_sum": lambda x: F.l1_loss(x, _x(torch).flip(0), reduction="sum"),
        "l1_none": lambda x: F.l1_loss(x, _x(torch).flip(0), reduction="none"),
    }


def x_grad(torch):
    """The input of the gradient cases: float64, no ties for l1_loss's |.| at 0."""
    return (torch.arange(12.0, dtype=torch.float64).reshape(3, 4) * 0.37 - 1.1)
