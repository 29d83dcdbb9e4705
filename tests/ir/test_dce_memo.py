"""dce_changed's memo (ir/passes/dce.py): one DCE visits each op of a scan body once (pruning
the scan restricts its body, and the recursion into that body looks the result up), and it
keeps exactly what the DCE without the memo kept: the same printed program and the same
'changed' answer, alone and inside optimize's rounds, on random programs (scans included),
their gradients (scans in the adjoint), the IR files and the lstm benchmark's gradient."""
import importlib

import numpy as np
from hypothesis import given, settings

import gradjit
from benchmarks.objectives import lstm_loss
from ir import Builder, Function, Op, TensorType, Value
from ir.autodiff import vjp
from ir.parser import parse
from ir.passes import optimize, pipeline
from ir.passes.dce import EFFECTS, dce_changed, used_values
from ir.passes.pipeline import canonicalize_changed
from ir.passes.rewrite import shared
from ir.printer import print_function
from tests.ir.programs import structured_programs
from tests.ir.test_ir_roundtrip import IR_FILES

dce_module = importlib.import_module("ir.passes.dce")   # ir.passes.dce is also a function's name


# ---- the DCE as it was before the memo: the oracle ---------------------------------------

def _ref_dce_ops(ops, roots):
    live = set(roots)
    kept = []
    for op in reversed(ops):
        if not any(r in live for r in op.results) and op.prim.name not in EFFECTS:
            continue
        op = _ref_prune(op, live)
        live.update(op.inputs)
        kept.append(op)
    kept.reverse()
    return kept


def _ref_restrict(fn, results):
    return Function(fn.name, list(fn.params), _ref_dce_ops(fn.body, results), list(results))


def _ref_prune(op, live):
    if op.prim.name == "cond":
        keep = [i for i, r in enumerate(op.results) if r in live]
        if len(keep) == len(op.results):
            return op
        branches = [_ref_restrict(r, [r.results[i] for i in keep]) for r in op.regions]
        used = set().union(*(used_values(r) for r in branches))
        args = [i for i in range(len(op.inputs) - 1) if any(r.params[i] in used for r in branches)]
        branches = tuple(Function(r.name, [r.params[i] for i in args], r.body, r.results)
                         for r in branches)
        inputs = (op.inputs[0],) + tuple(op.inputs[1 + i] for i in args)
        return Op(op.prim, inputs, tuple(op.results[i] for i in keep), dict(op.params),
                  branches, op.loc)
    if op.prim.name != "scan":
        return op
    (body,) = op.regions
    nc = op.params["num_carry"]
    ny = len(body.results) - nc
    carries = {i for i in range(nc) if op.results[i] in live}
    ys = [k for k in range(ny) if op.results[nc + k] in live]
    while True:
        kc = sorted(carries)
        pruned = _ref_restrict(body, [body.results[i] for i in kc]
                               + [body.results[nc + k] for k in ys])
        used = used_values(pruned)
        more = {i for i in range(nc) if body.params[i] in used} - carries
        if not more:
            break
        carries |= more
    xs = [j for j in range(len(op.inputs) - nc) if body.params[nc + j] in used]
    if len(kc) == nc and len(ys) == ny and len(xs) == len(op.inputs) - nc:
        return op
    params = [body.params[i] for i in kc] + [body.params[nc + j] for j in xs]
    region = Function(body.name, params, pruned.body, pruned.results)
    inputs = tuple(op.inputs[i] for i in kc) + tuple(op.inputs[nc + j] for j in xs)
    results = tuple(op.results[i] for i in kc) + tuple(op.results[nc + k] for k in ys)
    return Op(op.prim, inputs, results, {**op.params, "num_carry": len(kc)}, (region,), op.loc)


def _ref_dce_changed(fn):
    kept = _ref_dce_ops(fn.body, fn.results)
    changed = len(kept) != len(fn.body) or any(a is not b for a, b in zip(kept, fn.body))
    run_region = shared(_ref_dce_changed)
    body = []
    for op in kept:
        regions = []
        for r in op.regions:
            new, region_changed = run_region(r)
            regions.append(new)
            changed |= region_changed
        body.append(Op(op.prim, op.inputs, op.results, dict(op.params), tuple(regions), op.loc))
    return Function(fn.name, list(fn.params), body, list(fn.results)), changed


# ---- the comparisons ---------------------------------------------------------------------

def _assert_same_dce(fn: Function):
    """One DCE and whole optimize runs agree with the oracle's, text and 'changed' alike."""
    new, new_changed = dce_changed(fn)
    ref, ref_changed = _ref_dce_changed(fn)
    assert print_function(new) == print_function(ref)
    assert new_changed == ref_changed
    g = fn
    for _ in range(pipeline.MAX_OPTIMIZE_ROUNDS):      # optimize's rounds, DCE checked in each
        g, changed = canonicalize_changed(g)
        new, new_dropped = dce_changed(g)
        ref, ref_dropped = _ref_dce_changed(g)
        assert print_function(new) == print_function(ref)
        assert new_dropped == ref_dropped
        g = new
        if not (changed or new_dropped):
            break
    assert print_function(g) == print_function(optimize(fn))


@settings(max_examples=60, deadline=None)
@given(structured_programs(max_steps=10))
def test_dce_agrees_with_the_dce_without_memo_on_random_programs(fn):
    _assert_same_dce(fn)


@settings(max_examples=30, deadline=None)
@given(structured_programs(max_steps=8, tame=True))
def test_dce_agrees_with_the_dce_without_memo_on_their_gradients(fn):
    _assert_same_dce(vjp(fn))
    _assert_same_dce(vjp(optimize(fn)))


def test_dce_agrees_with_the_dce_without_memo_on_the_ir_files():
    for path in IR_FILES:
        fn = parse(path.read_text())
        _assert_same_dce(fn)
        if any(op.prim.name in ("scan", "cond") for op in fn.body):
            try:
                grad = vjp(fn)
            except TypeError:        # a while over a differentiated value: no reverse mode
                continue
            _assert_same_dce(grad)


def test_dce_agrees_with_the_dce_without_memo_on_the_lstm_gradient():
    rng = np.random.default_rng(3)
    hidden, args = 8, [rng.standard_normal((16, 32)) * 0.1, np.zeros(32),
                       rng.standard_normal((16, 32)) * 0.1, np.zeros(32),
                       rng.standard_normal((3, 2, 8))]
    fn = gradjit.make_ir(lambda *a: lstm_loss(gradjit, gradjit.scan, *a, hidden))(*args)
    grad = vjp(fn, wrt=[0, 1, 2, 3])
    assert any(op.prim.name == "scan" for op in grad.body)
    _assert_same_dce(grad)


# ---- the work saved: each op of a scan body visited once ---------------------------------

def _nested_scan_program() -> tuple[Function, Op]:
    """An outer scan whose body runs an inner scan (with one dead y), plus a dead op."""
    t = TensorType("f64", (2,))
    h, x = Value(t, "h"), Value(t, "x")
    ib = Builder()
    inner_new = ib.tanh(ib.add(h, x))
    inner_body = Function("inner", [h, x], ib.ops, [inner_new, ib.exp(x)])
    oh, ox = Value(t, "oh"), Value(TensorType("f64", (3, 2)), "ox")
    ob = Builder()
    carry, _dead_ys = ob.emit("scan", oh, ox, num_carry=1, length=3, reverse=False,
                              regions=(inner_body,))
    ob.sin(oh)                                         # dead in the outer body
    outer_body = Function("outer", [oh, ox], ob.ops, [ob.mul(carry, oh)])
    inner_op = next(op for op in ob.ops if op.prim.name == "scan")
    h0, xs = Value(t, "h0"), Value(TensorType("f64", (4, 3, 2)), "xs")
    b = Builder()
    (out,) = b.emit("scan", h0, xs, num_carry=1, length=4, reverse=False, regions=(outer_body,))
    return Function("f", [h0, xs], b.ops, [out]), inner_op


def test_dce_visits_each_scan_body_op_once(monkeypatch):
    fn, inner_op = _nested_scan_program()
    visits = []
    real = dce_module.prune_control

    def counting(op, live, *memo):
        visits.append(op)
        return real(op, live, *memo)
    monkeypatch.setattr(dce_module, "prune_control", counting)
    new, changed = dce_changed(fn)
    assert changed                                     # the dead sin and the inner dead y
    assert sum(op is inner_op for op in visits) == 1   # without the memo: twice
    monkeypatch.setattr(dce_module, "prune_control", real)
    assert print_function(new) == print_function(_ref_dce_changed(fn)[0])
    assert "sin" not in print_function(new) and "exp" not in print_function(new)
