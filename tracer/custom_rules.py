"""gradjit.custom_vjp and gradjit.custom_jvp: functions with derivative rules of the user's, as
jax.custom_vjp / jax.custom_jvp spell and behave.

    @gj.custom_vjp
    def clip_gradient(x):
        return x

    def fwd(x):
        return x, None             # (output, residuals)

    def bwd(res, g):
        return (gj.clip(g, -1.0, 1.0),)   # one cotangent per argument

    clip_gradient.defvjp(fwd, bwd)

A call records one `custom_vjp_call` (or `custom_jvp_call`) op whose body is the primal
function and whose other regions are the rules (tracer/custom_call.py), so jit compiles the
body, grad / vjp / jacobian use the user's bwd (jvp its transpose, when bwd is linear in the
cotangents), jvp uses the user's jvp rule (grad its transpose), vmap batches the rules, and a
second derivative differentiates the rules as ordinary code. Arguments in nondiff_argnums
are passed through as they are (to bwd first, as JAX does) and get no cotangent.
"""
from __future__ import annotations

import functools
import inspect

from ir import is_float
from tracer.custom_call import record_custom_jvp, record_custom_vjp
from tracer.expr import apply_op, param_expr
from tracer.ops.operands import user_error
from tracer.pytree import tree_flatten, tree_unflatten
from tracer.record import torch_op
from tracer.staging import as_tensor, to_expr
from tracer.tensor import Tensor
from tracer.tracing import tracing

__all__ = ["custom_vjp", "custom_jvp"]


class _Call:
    """One call's arguments: the differentiable leaves as Exprs, and how to rebuild them."""

    def __init__(self, fun, nondiff_argnums, args, kwargs):
        if kwargs:
            bound = inspect.signature(fun).bind(*args, **kwargs)
            bound.apply_defaults()
            args = bound.args
        self.args = tuple(args)
        self.nondiff = tuple(sorted(i % len(args) for i in nondiff_argnums
                                    if -len(args) <= i < len(args)))
        self.diff = [i for i in range(len(args)) if i not in self.nondiff]
        self.trees, self.tensors = [], []
        for i in self.diff:
            leaves, tree = tree_flatten(args[i])
            self.trees.append(tree)
            try:
                self.tensors += [as_tensor(x) for x in leaves]
            except TypeError as e:
                raise user_error(TypeError, f"argument {i} of a custom_vjp/custom_jvp "
                                            f"function: {e}; pass it in nondiff_argnums") from None
        self.operands = [t._expr for t in self.tensors]

    def fresh(self, hint: str | None = None) -> list:
        return [param_expr(e.type, hint) for e in self.operands]

    def diff_trees(self, exprs) -> list:
        """The differentiable arguments rebuilt as pytrees of Tensors over exprs."""
        out, k = [], 0
        for tree in self.trees:
            out.append(tree_unflatten(tree, [Tensor(e) for e in exprs[k:k + tree.num_leaves]]))
            k += tree.num_leaves
        return out

    def full_args(self, exprs) -> tuple:
        args = list(self.args)
        for i, value in zip(self.diff, self.diff_trees(exprs)):
            args[i] = value
        return tuple(args)

    def nondiff_args(self) -> tuple:
        return tuple(self.args[i] for i in self.nondiff)


def _flat(out, what: str):
    leaves, tree = tree_flatten(out)
    try:
        return [to_expr(x) for x in leaves], tree
    except TypeError as e:
        raise user_error(TypeError, f"{what}: {e}") from None


def _run(f, *args):
    with tracing():
        return f(*args)


class _Busy:
    """Marks a custom function whose rules are being traced: a rule that calls the function
    itself (`return f(x), res`, as JAX's examples do) gets its plain primal, not a recursion."""

    def __init__(self, owner):
        self.owner = owner

    def __enter__(self):
        self.owner._busy = True

    def __exit__(self, *exc):
        self.owner._busy = False


def _same_types(got, want, msg: str):
    for g, w in zip(got, want):
        if g.type != w.type:
            raise user_error(TypeError, f"{msg}: got {g.type}, expected {w.type}")


class custom_vjp:
    """jax.custom_vjp: fun with a reverse-mode rule given by `defvjp(fwd, bwd)`."""

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = self.bwd = None
        self._busy = False

    def defvjp(self, fwd, bwd):
        """fwd(*args) -> (output, residuals); bwd(*nondiff_args, residuals, g) -> a tuple
        of cotangents, one per differentiable argument (None for a zero)."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args, **kwargs):
        name = getattr(self.fun, "__name__", "custom_vjp")
        if self._busy:
            return self.fun(*args, **kwargs)
        if self.fwd is None:
            raise user_error(AttributeError, f"No VJP defined for custom_vjp function {name} "
                                             "using defvjp.")
        call = _Call(self.fun, self.nondiff_argnums, args, kwargs)
        params = call.fresh()
        outs, out_tree = _flat(_run(self.fun, *call.full_args(params)), f"{name}'s output")
        with _Busy(self):
            pair = _run(self.fwd, *call.full_args(params))
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise user_error(TypeError, "Custom VJP fwd rule must produce a pair (list or "
                                        "tuple of length two) representing primal outputs "
                                        f"and residuals, got {type(pair).__name__}")
        fwd_outs, fwd_tree = _flat(pair[0], "custom_vjp fwd's primal output")
        if fwd_tree != out_tree:
            raise user_error(TypeError, f"Custom VJP fwd rule must produce primal outputs with "
                                        f"the structure of {name}'s output {out_tree}, got "
                                        f"{fwd_tree}")
        _same_types(fwd_outs, outs, "custom_vjp fwd's primal output differs from the primal's")
        res, res_tree = _flat(pair[1], "custom_vjp residuals")
        res_params = [param_expr(e.type, "res") for e in res]
        g_params = [param_expr(e.type, "g") for e in outs]
        with _Busy(self):
            cts = _run(self.bwd, *call.nondiff_args(),
                       tree_unflatten(res_tree, [Tensor(p) for p in res_params]),
                       tree_unflatten(out_tree, [Tensor(p) for p in g_params]))
        flat_cts = _bwd_cotangents(cts, call, name)
        results = _as_user_op("CustomVjpCall", call, lambda: record_custom_vjp(
            name, params, call.operands, outs, fwd_outs, res, res_params, g_params, flat_cts))
        return tree_unflatten(out_tree, list(results))


def _bwd_cotangents(cts, call: _Call, name: str) -> list:
    """bwd's output flattened to one cotangent Expr (or None) per operand, checked."""
    if not isinstance(cts, (tuple, list)):
        raise user_error(TypeError, f"Custom VJP bwd rule must produce a tuple, got "
                                    f"{type(cts).__name__} (for {name})")
    if len(cts) != len(call.diff):
        raise user_error(TypeError, f"Custom VJP bwd rule must produce a tuple of length equal "
                                    f"to the number of differentiable arguments of {name} "
                                    f"({len(call.diff)}), got length {len(cts)}")
    out, k = [], 0
    for ct, tree, i in zip(cts, call.trees, call.diff):
        want = call.operands[k:k + tree.num_leaves]
        k += tree.num_leaves
        if ct is None:
            out += [None] * len(want)
            continue
        leaves, ct_tree = tree_flatten(ct)
        if ct_tree != tree:            # None leaves stand for zero cotangents
            leaves, ct_tree = tree_flatten(ct, is_leaf=lambda x: x is None)
        if ct_tree != tree:
            raise user_error(TypeError, f"Custom VJP bwd rule produced a cotangent of "
                                        f"structure {ct_tree} for argument {i} of {name}, "
                                        f"whose structure is {tree}")
        for c, w in zip(leaves, want):
            out.append(None if c is None or not is_float(w.type.dtype) else _fit(c, w, name, i))
    return out


def _fit(c, want, name: str, i: int):
    e = as_tensor(c)._expr
    if e.type.shape != want.type.shape:
        raise user_error(ValueError, f"Custom VJP bwd rule must produce an output with the same "
                                     f"shape as the primal input: for argument {i} of {name}, "
                                     f"got {e.type}, expected {want.type}")
    if e.type.dtype != want.type.dtype:
        e = apply_op("convert", (e,), None, dtype=want.type.dtype)[0]
    return e


class custom_jvp:
    """jax.custom_jvp: fun with a forward-mode rule given by `defjvp(jvp)` or `defjvps`."""

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp = None
        self._busy = False

    def defjvp(self, jvp, symbolic_zeros=False):
        """jvp(*nondiff_args, primals, tangents) -> (primal_out, tangent_out); returns jvp,
        so it can be used as a decorator."""
        self.jvp = jvp
        return jvp

    def defjvps(self, *jvps):
        """One rule per differentiable argument, each jvp_i(tangent_i, primal_out, *primals)
        -> its contribution to the output tangent (None: the output does not depend on it)."""
        def jvp(*args):
            primals, tangents = args[-2], args[-1]
            out = self.fun(*args[:-2], *primals)
            terms = [rule(t, out, *primals) for rule, t in zip(jvps, tangents)
                     if rule is not None]
            return out, _tree_sum(terms, out)
        self.jvp = jvp

    def __call__(self, *args, **kwargs):
        name = getattr(self.fun, "__name__", "custom_jvp")
        if self._busy:
            return self.fun(*args, **kwargs)
        if self.jvp is None:
            raise user_error(AttributeError, f"No JVP defined for custom_jvp function {name} "
                                             "using defjvp.")
        call = _Call(self.fun, self.nondiff_argnums, args, kwargs)
        params = call.fresh()
        outs, out_tree = _flat(_run(self.fun, *call.full_args(params)), f"{name}'s output")
        t_params = call.fresh("t")
        with _Busy(self):
            pair = _run(self.jvp, *call.nondiff_args(), tuple(call.diff_trees(params)),
                        tuple(call.diff_trees(t_params)))
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise user_error(TypeError, "Custom JVP rule must produce a pair (list or tuple of "
                                        "length two) representing primal and tangent outputs, "
                                        f"got {type(pair).__name__}")
        j_outs, j_tree = _flat(pair[0], "custom_jvp rule's primal output")
        t_outs, t_tree = _flat(pair[1], "custom_jvp rule's tangent output")
        if j_tree != out_tree or t_tree != out_tree:
            raise user_error(TypeError, f"Custom JVP rule must produce primal and tangent "
                                        f"outputs with equal container (pytree) structures, "
                                        f"and the structure of {name}'s output {out_tree}; got "
                                        f"{j_tree} and {t_tree}")
        _same_types(j_outs, outs, "custom_jvp rule's primal output differs from the primal's")
        t_outs = [t if is_float(o.type.dtype) else _zeros_like(o) for t, o in zip(t_outs, outs)]
        _same_types(t_outs, outs, "Custom JVP rule must produce primal and tangent outputs "
                                  "with corresponding shapes and dtypes")
        results = _as_user_op("CustomJvpCall", call, lambda: record_custom_jvp(
            name, params, call.operands, outs, t_params, j_outs, t_outs))
        return tree_unflatten(out_tree, list(results))


def _as_user_op(node: str, call: _Call, record_op):
    """record_op() as one user-facing op on the argument Tensors, so the imperative autograd
    attaches a node (named node + 'Backward0') whose gradient is the op's rule."""
    return torch_op(node)(lambda *tensors: record_op())(*call.tensors)


def _zeros_like(e):
    return apply_op("constant", (), None, value=0, dtype=e.type.dtype, shape=e.type.shape)[0]


def _tree_sum(terms: list, like):
    """The leafwise sum of pytrees (zeros shaped like `like` when there are none)."""
    if not terms:
        leaves, tree = tree_flatten(like)
        return tree_unflatten(tree, [Tensor(_zeros_like(as_tensor(x)._expr)) for x in leaves])
    total = terms[0]
    for t in terms[1:]:
        a, tree = tree_flatten(total)
        total = tree_unflatten(tree, [x + y for x, y in zip(a, tree_flatten(t)[0])])
    return total
