"""The backward engine: one IR Function per backward() / autograd.grad() call.

Design. The autograd graph (nodes.py) is walked from the roots in reverse topological
order, and each node on the way *emits* its vector-Jacobian product into one Builder
(emitter.py): an op node inlines ir.autodiff.vjp of its local Function (cached by
structure), a custom autograd.Function node inlines its user-written backward, traced with
symbolic gradient Tensors (function.py), and a tensor hook inlines its traced hook. This
per-node emission is what lets both kinds of node live in one compiled program: a plain
whole-graph ir.autodiff.vjp could not contain user Python backward code. The forward
values the VJPs need are copied into the same Builder from the lazy Expr graph (realised
values come in as parameters, pending ones are computed in the same program), so forward
and backward are fused, compiled together and cached by structure: a training loop
compiles its step once.

The Function's results are the gradients (already summed with any existing `.grad`), the
roots' values and the current values of the leaves it touched (so a loop of in-place
updates never builds an ever-longer pending graph). It then runs through
tracer.pipeline; or, with create_graph=True or inside a functional trace, it is recorded
onto the Expr graph (tracer.expr.apply_function) so its results stay lazy, and gradients
that depend on something requiring grad get nodes of their own: differentiable again.

A plain backward() whose graph has the structure of an earlier one (the next step of a
training loop) does not emit at all: replay.py keys the graph's structure and reruns the
program built then, bound to this step's arrays.
"""
from __future__ import annotations

import warnings

from tracer.autograd import by_node, follow, replay, views
from tracer.autograd.emitter import Emitter, result_dependencies
from tracer.autograd.graph import (edge_map, needed_nodes, reachable_leaves, retained_edges,
                                   toposort)
from tracer.autograd.hooks import apply_hooks
from tracer.autograd.nodes import edge_of, node_class
from tracer.autograd.recording import OpNode
from tracer.creation import tensor, zeros_like
from tracer.errors import user_location
from tracer.expr import apply_function, data_exprs, settle
from tracer.pipeline import plain_native
from tracer.run_programs import executable_of
from tracer.tensor import Tensor, run_function, updated_pending

CREATE_GRAPH_WARNING = (
    "Using backward() with create_graph=True will create a reference cycle between the "
    "parameter and its gradient which can cause a memory leak. We recommend using "
    "autograd.grad when creating the graph to avoid this. If you have to use this function, "
    "make sure to reset the .grad fields of your parameters to None after use to break the "
    "cycle and avoid the leak.")


def _as_list(x) -> list:
    if x is None:
        return []
    return [x] if isinstance(x, Tensor) else list(x)


def make_grads(outputs: list[Tensor], grads: list) -> list:
    """Checks the gradients given for the outputs (PyTorch's _make_grads)."""
    if len(grads) != len(outputs):
        raise RuntimeError(f"grad_tensors has {len(grads)} tensors but tensors has "
                           f"{len(outputs)}")
    checked = []
    for i, (out, g) in enumerate(zip(outputs, grads)):
        if g is not None and not isinstance(g, Tensor):
            g = tensor(g, dtype=out.dtype)
        if g is not None:
            if g.shape != out.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                                   f"{g.shape!r} and output[{i}] has a shape of {out.shape!r}.")
        elif out.requires_grad and out.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        checked.append(g)
    return checked


def check_roots(outputs: list[Tensor]):
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not "
                               "have a grad_fn")


class Run:
    """One backward pass: builds the Function, runs it, hands out the results."""

    def __init__(self, roots, seeds, create_graph: bool):
        self.roots = roots
        self.seeds = seeds
        self.create_graph = create_graph
        self.root_edges = [edge_of(t) for t in roots]
        self.order = toposort([e[0] for e in self.root_edges])
        self._em = None                           # made on first use: a replay needs none
        self.cts: dict = {}
        self.extra_tensors: list[Tensor] = []     # old .grad tensors folded into the sums
        self.hooked: set = set()                  # nodes whose output cts passed their hooks
        self.built = None                         # (fn, captures, realized Exprs) once run

    @property
    def em(self) -> Emitter:
        if self._em is None:
            self._em = Emitter()
        return self._em

    def propagate(self, targets: list):
        """Emits the reverse pass toward the target edges; returns the executed nodes."""
        target_set = set(targets)
        executed = self.check(targets)
        em, cts = self.em, self.cts
        for edge, root, seed in zip(self.root_edges, self.roots, self.seeds):
            cts[edge] = em.accumulate(cts.get(edge), self._seed(root, seed))
        for node in self.order:
            if node not in executed:
                continue
            out_cts = [cts.get((node, i)) for i in range(node.num_outputs)]
            out_cts = apply_hooks(node, em, out_cts)
            # the hooked gradient is the tensor's gradient (retain_grad, autograd.grad)
            cts.update(((node, i), g) for i, g in enumerate(out_cts) if g is not None)
            self.hooked.add(node)
            if all(g is None for g in out_cts):
                continue
            wanted = [e is not None and (e in target_set or e[0] in executed)
                      for e in node.edges]
            for e, c, w in zip(node.edges, node.emit_vjp(em, out_cts, wanted), wanted):
                if w and c is not None:
                    cts[e] = em.accumulate(cts.get(e), c)
        return executed

    def check(self, targets: list) -> set:
        """The nodes to execute, after checking their saved tensors (freed, modified)."""
        executed = needed_nodes(self.order, set(targets))
        for node in self.order:
            if node in executed:
                node.check_saved()
        return executed

    def _seed(self, root: Tensor, seed):
        t = root._expr.type
        if seed is None:
            return self.em.b.const(1, t.dtype, t.shape)
        v = self.em.value(seed._expr)
        return v if v.type.dtype == t.dtype else self.em.b.convert(v, dtype=t.dtype)

    def gradient(self, edge):
        """The total cotangent reaching edge (after its hooks), or None if none did."""
        g = self.cts.get(edge)
        if g is not None and edge[0] not in self.hooked:
            g = apply_hooks(edge[0], self.em, [None] * edge[1] + [g])[edge[1]]
        return g

    def finish(self, results: list, realize: list, replaced: list = ()) -> list:
        """Runs (or records) the Function; returns one Tensor per result Value.

        replaced: pending values of tensors updated in place that this backward replaces
        (old `.grad`s it accumulates into): not computed as results of their own."""
        realize = [e for e in realize if e.data is None and not e.symbolic and e.op is not None]
        realize += self.em.live_siblings(realize)
        # tensors updated in place during the step (BatchNorm's running statistics under
        # no_grad): computed along, or each one's pending graph would grow by a step per step
        realize += updated_pending(realize + list(replaced))
        values = list(results) + [self.em.value(e) for e in realize]
        if not values:
            return []
        fn = self.em.function("backward", values)
        captures = self.em.captures
        if self.create_graph or any(c.symbolic for c in captures):
            exprs = apply_function(fn, captures)
            tensors = [Tensor(e) for e in exprs[:len(results)]]
            if self.create_graph:
                self._attach_grad_nodes(fn, tensors)
            return tensors
        self.built = (fn, captures, realize)
        return self.unpack(fn, run_function(fn, [c.data for c in captures]), len(results),
                           realize)

    @staticmethod
    def unpack(fn, arrays: list, n_results: int, realize: list) -> list:
        """Stores the realised values; returns fn's first n_results results as Tensors."""
        for e, arr in zip(realize, arrays[n_results:]):
            arr.flags.writeable = False
            settle(e, arr)
        results = arrays[:n_results]
        for arr in results:
            arr.flags.writeable = False
        types = [v.type for v in fn.results[:n_results]]
        return [Tensor(e) for e in data_exprs(results, types)]

    def _attach_grad_nodes(self, fn, tensors: list[Tensor]):
        """create_graph: each gradient that depends on something requiring grad is the
        output of a node whose local Function is the backward program itself."""
        edges = edge_map(self.order, self.roots + [s for s in self.seeds if s is not None]
                         + self.extra_tensors)
        captures = self.em.captures
        cap_edges = [edges.get(id(c)) for c in captures]
        live = sum(1 << i for i, e in enumerate(cap_edges) if e is not None)
        deps = result_dependencies(fn)
        defs = {r: op for op in fn.body for r in op.results}
        for i, t in enumerate(tensors):
            if not deps[i] & live:
                continue
            op = defs.get(fn.results[i])
            cls = node_class(_grad_node_name(op), OpNode)
            node = cls(list(zip(captures, cap_edges)), [t._expr], user_location())
            t._grad_fn = node
            t._expr.recorded = True


# The PyTorch grad_fn name (without "Backward0") of a gradient computed last by each primitive:
# the tracer's own table (the IR knows nothing of PyTorch), one entry per primitive
# (tests/test_rules_complete.py checks that none is missing).
_PRIM_NODES = {
    "exp": "Exp", "log": "Log", "log1p": "Log1P", "expm1": "Expm1", "sqrt": "Sqrt",
    "rsqrt": "Rsqrt", "sin": "Sin", "cos": "Cos", "tan": "Tan", "tanh": "Tanh",
    "logistic": "Sigmoid", "erf": "Erf", "neg": "Neg", "abs": "Abs", "sign": "Sign",
    "integer_pow": "Pow",
    "asin": "Asin", "acos": "Acos", "atan": "Atan", "atan2": "Atan2", "sinh": "Sinh",
    "cosh": "Cosh", "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "log2": "Log2",
    "log10": "Log10", "exp2": "Exp2", "erfc": "Erfc", "erfinv": "Erfinv", "lgamma": "Lgamma",
    "digamma": "Digamma", "polygamma": "Polygamma",
    "logical_not": "LogicalNot", "stop_gradient": "StopGradient", "convert": "ToCopy",
    "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "max": "Max", "min": "Min",
    "pow": "Pow", "rem": "Fmod", "logical_and": "LogicalAnd", "logical_or": "LogicalOr", "lt": "Lt",
    "le": "Le", "gt": "Gt", "ge": "Ge", "eq": "Eq", "ne": "Ne", "select": "Where",
    "broadcast_in_dim": "Expand", "reshape": "View", "transpose": "Permute", "slice": "Slice",
    "pad": "Pad", "concatenate": "Concatenate", "reduce_sum": "Sum", "reduce_max": "ReduceMax",
    "reduce_min": "ReduceMin", "argmax": "Argmax", "argmin": "Argmin", "dot_general": "Mm",
    "gather": "Gather", "scatter_add": "ScatterAdd", "iota": "Iota", "constant": "Constant",
    "cond": "Cond", "while": "While", "scan": "Scan",
    "custom_vjp_call": "CustomVjpCall", "custom_jvp_call": "CustomJvpCall",
    "debug_print": "DebugPrint",
    "cholesky": "LinalgCholeskyEx", "triangular_solve": "LinalgSolveTriangular",
    "lu": "LinalgLuFactorEx", "qr": "LinalgQr", "eigh": "LinalgEigh", "svd": "LinalgSvd",
    "cumsum": "Cumsum", "cumprod": "Cumprod", "cumlogsumexp": "Logcumsumexp",
    "cummax": "Cummax", "cummin": "Cummin", "sort": "Sort",
    # bits (gj.random, & | ^ << >>): not differentiable, named as PyTorch's ops
    "bitwise_and": "BitwiseAnd", "bitwise_or": "BitwiseOr", "bitwise_xor": "BitwiseXor",
    "shift_left": "BitwiseLeftShift", "shift_right_logical": "BitwiseRightShift",
    "shift_right_arithmetic": "BitwiseRightShift", "bitcast_convert": "View",
}


def _grad_node_name(op) -> str:
    """A gradient built with create_graph is named after the op that computed it last."""
    if op is None:
        return "AliasBackward0"
    return _PRIM_NODES[op.prim.name] + "Backward0"


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             inputs=None):
    """Accumulates d(tensors)/d(leaves) into the leaves' .grad (torch.autograd.backward)."""
    roots = _as_list(tensors)
    seeds = make_grads(roots, _as_list(grad_tensors) if grad_tensors is not None
                       else [None] * len(roots))
    check_roots(roots)
    chosen = None
    if inputs is not None:
        chosen = _as_list(inputs)
        if not chosen:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        _check_inputs(chosen)
    retain = create_graph if retain_graph is None else retain_graph
    if create_graph:
        warnings.warn(CREATE_GRAPH_WARNING, UserWarning, stacklevel=3)
    elif chosen is None and grad_tensors is None and len(roots) == 1 and \
            replay.lookup is _LOOKUP:
        hit = follow.follow(roots[0])
        if hit is not None:            # the last replayed structure again (follow.py)
            _follow_replay(hit, retain)
            return
    run = Run(roots, seeds, create_graph)
    if chosen is not None:
        targets = [(edge_of(t), t) for t in chosen]
    else:
        targets = [(e, e[0].variable) for e in reachable_leaves(run.order, run.root_edges)]
        targets += retained_edges(run.order)
    targets = [(e, t) for e, t in targets if t is not None]
    big = by_node.applies(run)            # a long unrolled loop: node by node
    walk = None if create_graph or big else replay.describe(run, targets)
    plan = replay.lookup(walk) if walk is not None else None
    if plan is not None:
        executed = run.check([e for e, _ in targets])
        follow.learn(run, walk, plan, targets, executed)     # the state before the run
        _replay(walk, plan, targets)
    else:
        edges = [e for e, _ in targets]
        executed = by_node.propagate(run, edges) if big else run.propagate(edges)
        owners = _accumulate(run, targets, roots)
        if walk is not None and run.built is not None:
            replay.store(walk, *run.built, owners)
    if not retain:
        for node in executed:
            node.release()
        if big:
            by_node.free(executed)


def _accumulate(run: Run, targets, roots):
    """New .grad = old .grad + gradient, computed inside the backward Function.

    Returns the positions in targets of the tensors that received a gradient."""
    results, owners, positions, replaced = [], [], [], []
    for pos, (edge, t) in enumerate(targets):
        g = run.gradient(edge)
        if g is None:
            continue
        positions.append(pos)
        old = t._grad
        if old is not None:
            run.extra_tensors.append(old)
            g = run.em.b.add(run.em.value(old._expr), _cast(run.em, g, old._expr.type.dtype))
            if not run.create_graph and old._grad_fn is None:
                # _store_grads points it at the sum in place: its pending value (a
                # `.grad.zero_()`) is read inside the sum, never needed as a result (NOTE:
                # two_layer_net's step wrote a 400 KB array of zeros per backward)
                replaced.append(old._expr)
        results.append(g)
        owners.append(t)
    leaves = [t._expr for _, t in targets if t.is_leaf]
    tensors = run.finish(results, [r._expr for r in roots] + leaves, replaced)
    _store_grads(owners, tensors, run.create_graph)
    return positions


def _store_grads(owners: list[Tensor], tensors: list[Tensor], create_graph: bool):
    for t, new in zip(owners, tensors):
        old = t._grad
        if old is not None and not create_graph and old._grad_fn is None:
            views.assign(old, new._expr)       # in place, as PyTorch accumulates
            old._storage.version += 1
        else:
            t._grad = new


def _replay(walk, plan, targets):
    """Runs the program built for an earlier backward of the same structure."""
    exprs = walk.exprs
    arrays = run_function(plan.fn, [exprs[i].data for i in plan.captures])
    realize = [exprs[i] for i in plan.realize]
    tensors = Run.unpack(plan.fn, arrays, len(plan.owners), realize)
    _store_grads([targets[i][1] for i in plan.owners], tensors, False)


def _follow_replay(hit: tuple, retain: bool):
    """Runs the kept plan for a backward that follow.follow matched (the saved-tensor
    checks, the program, the stores and the release, as a keyed replay)."""
    plan, exprs, targets, executed = hit
    for node in executed:
        node.check_saved()
    exe = plan.exe
    if exe is False:                   # (made on the first follow: the run_function path)
        exe = plan.exe = executable_of(plan.fn)
        plan.types = [v.type for v in plan.fn.results[:len(plan.owners)]]
    # (tests observe the programs run by patching run_function: then it is called)
    if exe is None or not KEPT_EXE or run_function is not _RUN_FUNCTION or \
            not plain_native():
        _replay(_Found(exprs), plan, targets)
    else:
        _run_kept(exe, exprs, plan, targets)
        follow.STATS["kept_exe"] += 1
    replay.STATS["hits"] += 1
    follow.STATS["followed"] += 1
    if not retain:
        for node in executed:
            node.release()


KEPT_EXE = True        # tests and comparison: off runs a followed plan through run_function


def _run_kept(exe, exprs: dict, plan, targets: list):
    """_replay with the Executable run_function would call (executable_of: plain native
    code, no input slices to lift) and the gradients' types kept on the plan: the same
    argument checks and program, the same stores."""
    arrays = exe(*[exprs[i].data for i in plan.captures])
    n = len(plan.owners)
    for i, arr in zip(plan.realize, arrays[n:]):
        arr.flags.writeable = False
        settle(exprs[i], arr)
    results = arrays[:n]
    for arr in results:
        arr.flags.writeable = False
    _store_grads([targets[i][1] for i in plan.owners],
                 [Tensor(e) for e in data_exprs(results, plan.types)], False)


class _Found:
    """The Exprs at the walk positions a kept plan reads (what _replay asks of a Walk)."""
    __slots__ = ("exprs",)

    def __init__(self, exprs: dict):
        self.exprs = exprs


_LOOKUP = replay.lookup
_RUN_FUNCTION = run_function


def _cast(em: Emitter, v, dtype: str):
    return v if v.type.dtype == dtype else em.b.convert(v, dtype=dtype)


def _check_inputs(inputs: list[Tensor]):
    for t in inputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"inputs must be Tensors, got {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False,
         materialize_grads=False):
    """The gradients of outputs w.r.t. inputs, returned as a tuple (.grad is untouched)."""
    if is_grads_batched:
        raise NotImplementedError("gradjit's autograd.grad does not support is_grads_batched")
    roots = _as_list(outputs)
    chosen = _as_list(inputs)
    if not chosen:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    if allow_unused is None:
        allow_unused = materialize_grads
    seeds = make_grads(roots, _as_list(grad_outputs) if grad_outputs is not None
                       else [None] * len(roots))
    check_roots(roots)
    _check_inputs(chosen)
    retain = create_graph if retain_graph is None else retain_graph
    run = Run(roots, seeds, create_graph)
    edges = [edge_of(t) for t in chosen]
    executed = run.propagate(edges)
    grads = [run.gradient(e) for e in edges]
    for i, g in enumerate(grads):
        if g is None and not allow_unused:
            raise RuntimeError(f"The differentiated Tensor at index {i} appears to not have "
                               "been used in the graph. Set allow_unused=True if this is the "
                               "desired behavior.")
    present = [g for g in grads if g is not None]
    tensors = iter(run.finish(present, [r._expr for r in roots]))
    out = []
    for g, t in zip(grads, chosen):
        if g is not None:
            out.append(next(tensors))
        elif materialize_grads:
            out.append(zeros_like(t))
        else:
            out.append(None)
    if not retain:
        for node in executed:
            node.release()
    return tuple(out)
