"""Fusion planning and the shape of the emitted LLVM IR (FileCheck on opcodes only)."""
import re

import numpy as np

import runtime
from codegen import lower_function
from codegen.emit import HEADER_BYTES
from codegen.fusion import KernelStep, LoopNest, plan_function
from ir.autodiff import grad
from ir.interpret import interpret
from ir.passes import optimize
from tests.prim_samples import T, make_fn
from tests.codegen.test_codegen_primitives import assert_same
from tests.filecheck import filecheck


def nests(plan):
    return [s for s in plan.steps if isinstance(s, LoopNest)]


def loop_count(llvm_ir: str) -> int:
    """Loops emitted by codegen.loops.for_range: one header block each."""
    return len(re.findall(r'^"?[\w.]+\.head"?:', llvm_ir, flags=re.M))


def check_runs(fn, seed=0, low=-2.0, high=2.0):
    rng = np.random.default_rng(seed)
    args = [rng.uniform(low, high, p.shape).astype(p.type.np_dtype) for p in fn.params]
    assert_same(runtime.compile(fn)(*args), interpret(fn, *args))


def chain(n=64, dtype="f32"):
    """sum(tanh(x*w + b)**2 * 0.5 + exp(-x*x)): issue 6's memory-bound workload."""
    t = T(dtype, (n,))

    def body(b, x, w, c):
        h = b.tanh(b.add(b.mul(x, w), c))
        term = b.add(b.mul(b.integer_pow(h, n=2), b.const(0.5, dtype, (n,))),
                     b.exp(b.neg(b.mul(x, x))))
        return [b.reduce_sum(term, axes=(0,))]
    return make_fn("chain", [t, t, t], body)


def test_elementwise_chain_is_one_loop_with_no_temporaries():
    fn = make_fn("f", [T("f32", (8, 16))] * 2,
                 lambda b, x, y: [b.tanh(b.add(b.mul(x, y), b.exp(x)))])
    plan = plan_function(fn)
    assert len(plan.steps) == 1 and len(plan.steps[0].roots) == 1
    src = lower_function(fn)
    assert src.workspace_bytes == HEADER_BYTES
    assert loop_count(src.llvm_ir) == 2                 # the two axes of one nest
    filecheck(src.llvm_ir, """
        CHECK: define internal void
        CHECK: noalias
        CHECK: fmul contract float
        CHECK-NOT: reassoc
        CHECK: store float
    """)
    assert "reassoc" not in src.llvm_ir and "fast" not in src.llvm_ir
    check_runs(fn)


def test_forward_and_backward_share_one_pass():
    """The loss reduction and all three gradients of `chain` come from a single loop nest."""
    g = optimize(grad(chain()))
    plan = plan_function(g)
    assert len(plan.steps) == 1
    kinds = sorted(r.kind for r in plan.steps[0].roots)
    assert kinds == ["reduce", "store", "store", "store"]
    assert lower_function(g).workspace_bytes == HEADER_BYTES    # tanh and exp stay in registers
    check_runs(g)


def test_float_sum_is_strip_mined_so_the_fused_loop_vectorises():
    g = optimize(grad(chain(1000)))
    low = runtime.lower(g)
    assert "lanes" in low.llvm_ir
    assert re.search(r"<\d+ x float>", low.optimized_llvm_ir), "the fused loop did not vectorise"
    check_runs(g)


def test_same_index_consumer_joins_its_producers_nest():
    """softmax: max; then exp and its sum in one nest; then the division."""
    def body(b, x):
        m = b.broadcast_in_dim(b.reduce_max(x, axes=(1,)), shape=(4, 32), dims=(0,))
        e = b.exp(b.sub(x, m))
        s = b.broadcast_in_dim(b.reduce_sum(e, axes=(1,)), shape=(4, 32), dims=(0,))
        return [b.div(e, s)]
    fn = make_fn("softmax", [T("f64", (4, 32))], body)
    plan = plan_function(fn)
    assert [len(n.roots) for n in nests(plan)] == [1, 2, 1]
    assert [r.kind for r in nests(plan)[1].roots] == ["store", "reduce"]
    check_runs(fn)


def test_reader_at_another_index_waits_for_the_whole_value():
    """x - mean(x) cannot share the reduction's nest: it needs the finished sum."""
    def body(b, x):
        s = b.broadcast_in_dim(b.reduce_sum(x, axes=(0,)), shape=(16,), dims=())
        return [b.sub(x, s)]
    fn = make_fn("center", [T("f32", (16,))], body)
    plan = plan_function(fn)
    assert len(nests(plan)) == 2
    assert plan.steps.index(nests(plan)[0]) < plan.steps.index(nests(plan)[1])
    check_runs(fn)


def test_expensive_value_under_an_expanding_broadcast_is_materialised():
    def body(b, v, c):
        e = b.broadcast_in_dim(b.exp(v), shape=(8, 4), dims=(1,))
        n = b.broadcast_in_dim(b.neg(c), shape=(8, 4), dims=(1,))
        return [b.add(e, n)]
    fn = make_fn("bcast", [T("f32", (4,)), T("f32", (4,))], body)
    plan = plan_function(fn)
    buffered = {plan.producers[v].prim.name for v in plan.materialized}
    assert buffered == {"exp", "add"}                   # neg is cheap: recomputed, not stored
    check_runs(fn)


def test_cheap_value_with_two_consumers_is_recomputed():
    def body(b, x):
        y = b.add(x, b.const(1.0, "f32", (5,)))
        return [b.mul(y, y), b.sub(y, x)]
    fn = make_fn("cheap", [T("f32", (5,))], body)
    plan = plan_function(fn)
    assert {plan.producers[v].prim.name for v in plan.materialized} == {"mul", "sub"}
    assert len(plan.steps) == 1
    check_runs(fn)


def test_dead_ops_are_not_computed():
    def body(b, x):
        b.exp(x)                                        # no result depends on it
        return [b.neg(x)]
    fn = make_fn("dead", [T("f32", (5,))], body)
    plan = plan_function(fn)
    assert [plan.producers[v].prim.name for v in plan.materialized] == ["neg"]
    assert "fma" not in lower_function(fn).llvm_ir      # vmath's exp is all FMAs
    check_runs(fn)


def test_dot_general_is_a_kernel_with_buffered_operands():
    def body(b, x, w):
        wt = b.transpose(w, perm=(1, 0))
        return [b.tanh(b.dot_general(x, wt, contract=((1,), (0,)), batch=((), ())))]
    fn = make_fn("mm", [T("f32", (3, 4)), T("f32", (5, 4))], body)
    plan = plan_function(fn)
    kinds = [type(s).__name__ for s in plan.steps]
    assert kinds == ["LoopNest", "KernelStep", "LoopNest"]   # transpose copy, dot, tanh
    assert isinstance(plan.steps[1], KernelStep)
    check_runs(fn)


def test_results_are_fresh_buffers_even_when_returning_params_or_duplicates():
    fn = make_fn("dup", [T("f32", (3,))], lambda b, x: [x, b.exp(x), x])
    fn.results.append(fn.results[1])
    x = np.arange(3, dtype=np.float32)
    outs = runtime.compile(fn)(x)
    assert_same(outs, interpret(fn, x))
    assert all(not np.shares_memory(o, x) for o in outs)
    assert not np.shares_memory(outs[1], outs[3])
    outs[0][:] = 7
    assert x.tolist() == [0, 1, 2]


def test_dot_operands_are_relaid_for_a_contiguous_inner_loop():
    """x contracted on its first axis and y on its last are transposed into x[i,k] @ y[k,j]."""
    def body(b, x, y):
        return [b.dot_general(x, y, contract=((0,), (1,)), batch=((), ()))]
    fn = make_fn("mmt", [T("f64", (4, 3)), T("f64", (5, 4))], body)
    plan = plan_function(fn)
    (dot,) = [s for s in plan.steps if isinstance(s, KernelStep)]
    assert dot.op.params == {"contract": ((1,), (0,)), "batch": ((), ())}
    assert [v.shape for v in dot.op.inputs] == [(3, 4), (4, 5)]
    assert all(plan.producers[v].prim.name == "transpose" for v in dot.op.inputs)
    check_runs(fn)


def test_temporaries_with_disjoint_lives_share_workspace():
    """A chain of matmuls: each temporary is dead two steps after it is written."""
    def body(b, x, w):
        h = x
        for _ in range(6):
            h = b.tanh(b.dot_general(h, w, contract=((1,), (0,)), batch=((), ())))
        return [b.reduce_sum(h, axes=(0, 1))]
    fn = make_fn("deep", [T("f64", (8, 16)), T("f64", (16, 16))], body)
    plan = plan_function(fn)
    temp_bytes = sum(v.type.size * 8 for v in plan.materialized if v not in plan.homes)
    assert temp_bytes == 11 * 8 * 16 * 8                  # 6 dots, 5 tanh operands
    assert lower_function(fn).workspace_bytes <= HEADER_BYTES + 3 * 8 * 16 * 8
    check_runs(fn, low=-0.5, high=0.5)
