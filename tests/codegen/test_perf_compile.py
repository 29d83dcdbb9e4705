"""Compile time stays linear in program size: checked by structure, never by timing.

Every plan step is its own LLVM function marked noinline (inlining hundreds of loop nests
into one function made LLVM's loop passes superlinear), and fusion planning tests for cycles
on ancestor bitsets that must agree with a graph search.
"""
import re

import networkx as nx
import numpy as np

import runtime
from codegen import lower_function
from codegen.fusion import _Planner, plan_function
from ir.autodiff import grad
from ir.interpret import interpret
from ir.passes import optimize
from tests.prim_samples import T, make_fn


def unrolled_rnn(steps: int, hidden: int = 6, batch: int = 3):
    """loss(W, xs) = sum(h_T^2) with h_t = tanh(h_{t-1} @ W + xs[t]), unrolled."""
    def body(b, w, xs):
        h = b.const(0.0, "f64", (batch, hidden))
        for t in range(steps):
            x = b.reshape(b.slice(xs, start=(t, 0, 0), limit=(t + 1, batch, hidden),
                                  stride=(1, 1, 1)), shape=(batch, hidden))
            pre = b.dot_general(h, w, contract=((1,), (0,)), batch=((), ()))
            h = b.tanh(b.add(pre, x))
        return [b.reduce_sum(b.mul(h, h), axes=(0, 1))]
    return make_fn("rnn", [T("f64", (hidden, hidden)), T("f64", (steps, batch, hidden))], body)


def defined_functions(llvm_ir: str) -> list[str]:
    return re.findall(r"^define [^@]*@\"?([^\"(]+)\"?\(", llvm_ir, flags=re.M)


def test_a_thousand_op_gradient_lowers_to_one_small_function_per_step():
    g = optimize(grad(unrolled_rnn(100)))
    assert len(g.body) >= 1000
    plan = plan_function(g)
    src = lower_function(g)
    names = defined_functions(src.llvm_ir)
    steps = [n for n in names if re.search(r"\.s\d+$", n)]
    assert len(steps) == len(plan.steps)
    assert len(names) == len(plan.steps) + 2                 # + the body and the entry
    assert len(plan.steps) <= 6 * 100                        # linear: a few steps per time step
    headers = re.findall(r"^define internal void @\"?[^\"(]+\.s\d+\"?\(.*$", src.llvm_ir,
                         flags=re.M)
    assert len(headers) == len(steps) and all("noinline" in h for h in headers)


def test_the_unrolled_gradient_compiles_and_matches_the_interpreter():
    g = optimize(grad(unrolled_rnn(40)))
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((6, 6)) * 0.4, rng.standard_normal((40, 3, 6))]
    for got, want in zip(runtime.compile(g)(*args), interpret(g, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_ancestor_bitsets_agree_with_graph_reachability():
    planner = _Planner(optimize(grad(unrolled_rnn(8))), None)
    planner.plan()
    steps = list(planner.dag.succ)
    assert len(steps) > 10
    dag = nx.DiGraph()
    dag.add_nodes_from(steps)
    dag.add_edges_from((u, v) for u in steps for v in planner.dag.successors(u))
    for a in steps:
        below = nx.descendants(dag, a)
        for b in steps:
            assert bool(planner.ancestors[b] >> a.order & 1) == (b in below)
