"""The grad_fn name table (`fn.torch_name`, and the node each call records), checked against
PyTorch when it is installed, and the primitives the ops lower to (FileCheck on printed IR)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tracer.ops as gj
from ir.core import TensorType
from ir.printer import print_function
from tests.filecheck import filecheck
from tests.tracer.specs_math import ELEMENTWISE, NEURAL, REDUCTIONS
from tests.tracer.specs_struct import STRUCT_SPECS
from tests.tracer.tracing import trace
from tracer import record
from tracer.tensor import tensor_from_array

NAMED = [s for s in ELEMENTWISE + REDUCTIONS + NEURAL + STRUCT_SPECS if s.node]


@pytest.mark.parametrize("spec", NAMED, ids=lambda s: s.name)
def test_torch_name_table(spec):
    assert spec.public.torch_name == spec.node


class RecordedNodes:
    """Collects the node name of every outermost op recorded while active."""

    def __init__(self):
        self.names = []

    def __call__(self, name, saves, args, kwargs, result):
        self.names.append(name)
        return result

    def __enter__(self):
        record.op_hooks.insert(0, self)
        return self

    def __exit__(self, *exc):
        record.op_hooks.remove(self)


def _t(*shape):
    return tensor_from_array(np.random.default_rng(0).normal(size=shape))


# (call on gradjit tensors x: (3, 4), v: (4,), b: (2, 3, 4)), node; the same call must give
# a torch node of that name (up to PyTorch's overload number; `1 - x` is recorded as Sub
# with a number first, which autograd names RsubBackward1 as PyTorch does)
CALLS = [
    ("x @ x.T", "Mm"), ("x @ v", "Mv"), ("v @ v", "Dot"), ("v @ x.T", "Squeeze"),
    ("b @ x.T", "UnsafeView"), ("b @ b.mT", "UnsafeView"), ("x ** 2", "Pow"),
    ("x ** x", "Pow"), ("2 ** x", "Pow"), ("x.clamp(0, 1)", "Clamp"), ("x.clamp(x)", "Clamp"),
    ("x[1]", "Select"), ("x[1:3]", "Slice"), ("x[:, 1]", "Select"), ("x[0, 1:3]", "Slice"),
    ("x[None]", "Unsqueeze"), ("x[[0, 2]]", "Index"), ("x[:, [1, 0]]", "Index"),
    ("x.sum()", "Sum"), ("x.sum(1)", "Sum"), ("x.max()", "Max"), ("x.max(1)[0]", "Max"),
    ("x.max(x)", "Maximum"), ("x.T", "Permute"), ("x.t()", "T"), ("b.mT", "Transpose"),
    ("x.reshape(-1)", "View"), ("x.flatten()", "View"), ("x.split([1, 3], 1)[0]",
                                                         "SplitWithSizes"),
    ("x.split(2, 1)[0]", "Split"), ("x.chunk(2, 1)[0]", "Split"), ("x.unbind(0)[0]", "Unbind"),
    ("1 - x", "Sub"), ("x.double()", "ToCopy"), ("x.exp()", "Exp"), ("x.sigmoid()", "Sigmoid"),
    ("x.softmax(1)", "Softmax"), ("x.logsumexp(1)", "Logsumexp"), ("x.var(1)", "Var"),
]


@pytest.mark.parametrize("code,node", CALLS, ids=[c for c, _ in CALLS])
def test_each_call_records_the_node_pytorch_records(code, node):
    env = {"x": _t(3, 4).float(), "v": _t(4).float(), "b": _t(2, 3, 4).float()}
    with RecordedNodes() as seen:
        eval(code, {}, env)
    assert seen.names[-1] == node
    torch = pytest.importorskip("torch")
    tenv = {k: torch.tensor(np.asarray(t), requires_grad=True) for k, t in env.items()}
    out = eval(code, {}, tenv)
    torch_name = re.sub(r"Backward\d+$", "", type(out.grad_fn).__name__)
    assert torch_name == {"1 - x": "Rsub"}.get(code, node)


def test_inner_ops_are_not_separate_nodes():
    with RecordedNodes() as seen:
        gj.cross_entropy(_t(3, 4), np.array([0, 1, 2]))
    assert seen.names == ["NllLoss"]


def _ir(fn, *shapes, dtype="f64") -> str:
    func, _ = trace(fn, *(TensorType(dtype, s) for s in shapes))
    return print_function(func, locs=False)


def test_softmax_lowers_to_max_shift_exp_sum_div():
    filecheck(_ir(lambda x: gj.softmax(x, 1), (3, 4)), """
        CHECK: reduce_max %x0 {axes=[1]}
        CHECK: sub %x0
        CHECK: exp
        CHECK: reduce_sum
        CHECK: div
        CHECK-NOT: log
    """)


def test_log_softmax_and_logsumexp_never_exponentiate_unshifted_input():
    for text in (_ir(lambda x: gj.log_softmax(x, -1), (3, 4)),
                 _ir(lambda x: gj.logsumexp(x, 1), (3, 4))):
        filecheck(text, """
            CHECK: reduce_max %x0
            CHECK-NOT: exp %x0
            CHECK: exp
            CHECK: reduce_sum
            CHECK: log
        """)


def test_simple_ops_are_single_primitives():
    filecheck(_ir(lambda x: gj.sigmoid(x), (3,)), "CHECK: logistic %x0 : f64[3]")
    filecheck(_ir(lambda x: x ** 2, (3,)), "CHECK: integer_pow %x0 {n=2}")
    filecheck(_ir(lambda x, y: gj.maximum(x, y), (3,), (3,)), "CHECK: max %x0, %x1")
    filecheck(_ir(lambda x: gj.relu(x), (3,)), """
        CHECK: le %x0
        CHECK: select
    """)
    filecheck(_ir(lambda x: x[1:3, ::2], (4, 5)),
              "CHECK: slice %x0 {limit=[3, 5], start=[1, 0], stride=[1, 2]} : f64[2,3]")
    filecheck(_ir(lambda x, y: x + y, (3, 1), (4,)), """
        CHECK: broadcast_in_dim %x0 {dims=[0, 1], shape=[3, 4]}
        CHECK: broadcast_in_dim %x1 {dims=[1], shape=[3, 4]}
        CHECK: add
    """)


def test_products_lower_to_dot_general():
    filecheck(_ir(lambda a, b: a @ b, (2, 3, 4), (2, 4, 5)),
              "CHECK: dot_general %x0, %x1 {batch=[[0], [0]], contract=[[2], [1]]} : f64[2,3,5]")
    filecheck(_ir(lambda a, b: a @ b, (2, 3, 4), (4, 5)), """
        CHECK-NOT: broadcast_in_dim
        CHECK: dot_general %x0, %x1 {batch=[[], []], contract=[[2], [0]]} : f64[2,3,5]
    """)
    # the diagonal of a 4x4 is every 5th element of the flattened matrix
    filecheck(_ir(lambda a: gj.einsum("ii->i", a), (4, 4)), """
        CHECK: reshape %x0 {shape=[16]}
        CHECK: {limit=[16], start=[0], stride=[5]} : f64[4]
    """)


def test_gather_lowers_to_iota_arithmetic_and_the_gather_primitive():
    filecheck(_ir(lambda x: gj.gather(x, 1, np.array([[0], [2]])), (2, 3)), """
        CHECK: iota
        CHECK: gather
    """)
    filecheck(_ir(lambda x: x.index_add(0, np.array([1, 1]), x[:2]), (3, 2)),
              "CHECK: scatter_add")
