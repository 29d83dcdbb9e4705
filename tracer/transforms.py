"""The bodies of the differentiating transforms: grad, vjp, jvp, jacobian.

Each body runs inside a Staged trace (see tracer/staging.py) on Tensors: it traces the
user's function to an ir.Function (`trace_inner`), transforms that IR with ir.autodiff, and
records the transformed Function on its own inputs (`apply_to`). The enclosing Staged trace
then cuts, optimises and compiles the whole program, so `grad(f)` is one fused native
kernel, and a transform used inside another one just contributes plain IR.
"""
from __future__ import annotations

from ir import Function, autodiff, is_float
from ir.batching import batch_function
from ir.passes import optimize
from tracer import record
from tracer.errors import user_location
from tracer.pytree import tree_flatten, tree_unflatten
from tracer.staging import Traced, apply_to, is_array_leaf, project, to_expr, trace_inner
from tracer.tensor import Tensor
from tracer.tracing import traced


def _loc_of(fn: Function, value) -> str | None:
    for op in fn.body:
        if value in op.results:
            return op.loc
    return None


def _zeros(t) -> Tensor:
    return record.apply("constant", value=0, dtype=t.dtype, shape=t.shape)


# ---- grad -------------------------------------------------------------------------------

def _scalar_output(tr: Traced, has_aux: bool, name: str, what: str) -> list[int]:
    """Checks f's output is a float scalar (with has_aux: a pair); returns aux result indices."""
    tree = tr.out_tree
    if has_aux:
        if tree.kind not in ("tuple", "list") or len(tree.children) != 2:
            raise TypeError(f"{what} with has_aux=True requires '{name}' to return a pair "
                            f"(value, aux), got structure {tree}{_callsite()}")
        value_tree = tree.children[0]
    else:
        value_tree = tree
    where = _callsite()
    if value_tree.kind != "leaf":
        raise TypeError(f"{what} requires a scalar output, got a pytree {value_tree} from "
                        f"'{name}'{where}")
    t = tr.fn.results[0].type
    loc = _loc_of(tr.fn, tr.fn.results[0])
    computed = f" (computed at {loc})" if loc else ""
    if t.shape != ():
        raise TypeError(f"{what} requires a scalar output, got {t} from '{name}'{computed}{where}"
                        "; reduce it first (e.g. .sum()) or use vjp / jacobian")
    if not is_float(t.dtype):
        raise TypeError(f"{what} requires a float output, got {t} from '{name}'{computed}{where}")
    return list(range(1, len(tr.fn.results)))


def _callsite() -> str:
    loc = user_location()
    return f", called at {loc}" if loc else ""


def _differentiate(transform, fn: Function, wrt: list[int]) -> Function:
    """transform(fn, wrt) (an ir.autodiff transform); what it cannot differentiate (e.g. a
    while loop in reverse mode) is reported with the user's call site."""
    try:
        return transform(fn, wrt)
    except (TypeError, NotImplementedError) as e:
        raise type(e)(f"{e}{_callsite()}") from e


def _float_params(tr: Traced, argnums: tuple[int, ...], what: str) -> list[list[int]]:
    """Per argnum, the fn param indices of its leaves; every leaf must be a float array."""
    out = []
    for i in argnums:
        for x in tr.arg_leaves(i):
            if not is_array_leaf(x):
                raise TypeError(f"{what} with respect to argument {i}: {x!r} is not a float "
                                "array (integer and static inputs cannot be differentiated)"
                                f"{_callsite()}")
        params = tr.arg_params(i)
        for k in params:
            t = tr.fn.params[k].type
            if not is_float(t.dtype):
                raise TypeError(f"{what} requires float inputs, got {t} for argument {i} "
                                f"('{tr.fn.params[k].name_hint}'); integer inputs cannot be "
                                f"differentiated{_callsite()}")
        out.append(params)
    return out


def _arg_trees(tr: Traced, argnums, values: list[Tensor], single: bool):
    """Unflattens a flat list (one per wrt leaf) into the argnums arguments' structures."""
    trees, k = [], 0
    args, _ = tr.sig.rebuild(tr.sig.leaves)
    for i in argnums:
        _, tree = tree_flatten(args[i])
        n = tree.num_leaves
        trees.append(tree_unflatten(tree, values[k:k + n]))
        k += n
    return trees[0] if single else tuple(trees)


def grad_body(f, name: str, argnums, has_aux: bool, with_value: bool, single: bool):
    """The traced body of grad / value_and_grad (argnums already normalised)."""
    def body(*args, **kwargs):
        tr = trace_inner(traced(f), name, args, kwargs)
        what = "value_and_grad" if with_value else "grad"
        # the inputs first: an integer input is the mistake even when the output is integer too
        wrt = [k for ks in _float_params(tr, argnums, what) for k in ks]
        aux_ix = _scalar_output(tr, has_aux, name, what)
        gfn = _differentiate(autodiff.grad, optimize(project(tr.fn, [0])), wrt)
        inputs = tr.inputs()
        outs = apply_to(gfn, inputs)
        value, grads = outs[0], _arg_trees(tr, argnums, outs[1:], single)
        if has_aux:
            aux = tree_unflatten(tr.out_tree.children[1], apply_to(project(tr.fn, aux_ix), inputs))
            value = (value, aux)
        return (value, grads) if with_value else ((grads, value[1]) if has_aux else grads)
    return body


# ---- vjp --------------------------------------------------------------------------------

def _value_results(tr: Traced, has_aux: bool) -> list[int]:
    n = tr.out_tree.children[0].num_leaves if has_aux else tr.out_tree.num_leaves
    return list(range(n))


def vjp_body(f, name: str, nprimals: int, has_aux: bool):
    """body(*primals, cotangent) -> tuple of cotangents, one pytree per primal."""
    def body(*args):
        primals, ct = args[:nprimals], args[nprimals]
        tr = trace_inner(traced(f), name, primals)
        fn_v = project(tr.fn, _value_results(tr, has_aux))
        value_tree = tr.out_tree.children[0] if has_aux else tr.out_tree
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != value_tree:
            raise TypeError(f"vjp: cotangent structure {ct_tree} does not match the output "
                            f"structure {value_tree}{_callsite()}")
        ct_exprs = []
        for c, r in zip(ct_leaves, fn_v.results):
            e = to_expr(c)
            if e.type != r.type:
                raise TypeError(f"vjp: cotangent {e.type} does not match output {r.type}"
                                f"{_callsite()}")
            if is_float(r.type.dtype):
                ct_exprs.append(e)
        n_primal_params = len(tr.sig.arrays)
        wrt = [k for k in range(n_primal_params) if is_float(tr.fn.params[k].type.dtype)]
        vfn = _differentiate(autodiff.vjp, optimize(fn_v), wrt)
        outs = apply_to(vfn, tr.inputs() + ct_exprs)[len(fn_v.results):]
        return _per_primal(tr, primals, wrt, outs)
    return body


def _per_primal(tr: Traced, primals, wrt: list[int], cts: list[Tensor]) -> tuple:
    """One cotangent pytree per primal; integer leaves get zeros, static leaves None."""
    by_param = dict(zip(wrt, cts))
    out, k = [], 0
    for p in primals:
        leaves, tree = tree_flatten(p)
        vals = []
        for x in leaves:
            if not is_array_leaf(x):
                vals.append(None)
                continue
            ct = by_param.get(k)
            vals.append(ct if ct is not None else _zeros(tr.fn.params[k].type))
            k += 1
        out.append(tree_unflatten(tree, vals))
    return tuple(out)


# ---- jvp --------------------------------------------------------------------------------

def jvp_body(f, name: str, nprimals: int):
    """body(*primals, *tangents) -> (primal out, tangent out)."""
    def body(*args):
        primals, tangents = args[:nprimals], args[nprimals:]
        tr = trace_inner(traced(f), name, primals)
        p_leaves, p_tree = tree_flatten(primals)
        t_leaves, t_tree = tree_flatten(tangents)
        if t_tree != p_tree:
            raise TypeError(f"jvp: tangents structure {t_tree} does not match primals "
                            f"{p_tree}{_callsite()}")
        wrt, t_exprs, k = [], [], 0
        for p, t in zip(p_leaves, t_leaves):
            if not is_array_leaf(p):
                continue
            ptype = tr.fn.params[k].type
            if is_float(ptype.dtype):
                te = to_expr(t)
                if te.type != ptype:
                    raise TypeError(f"jvp: tangent {te.type} does not match primal {ptype}"
                                    f"{_callsite()}")
                wrt.append(k)
                t_exprs.append(te)
            k += 1
        jfn = _differentiate(autodiff.jvp, optimize(tr.fn), wrt)
        outs = apply_to(jfn, tr.inputs() + t_exprs)
        n = len(tr.fn.results)
        float_tangents = iter(outs[n:])
        tangents_out = [next(float_tangents) if is_float(r.type.dtype) else _zeros(r.type)
                        for r in tr.fn.results]
        return tree_unflatten(tr.out_tree, outs[:n]), tree_unflatten(tr.out_tree, tangents_out)
    return body


# ---- jacobian (reverse mode, batched over the rows) --------------------------------------

def jacobian_body(f, name: str, argnums, single: bool, has_aux: bool):
    """body(*args) -> per output leaf, per argnum: an array of shape out.shape + in.shape."""

    def body(*args, **kwargs):
        tr = trace_inner(traced(f), name, args, kwargs)
        wrt_per_arg = _float_params(tr, argnums, "jacobian")
        wrt = [k for ks in wrt_per_arg for k in ks]
        value_ix = _value_results(tr, has_aux)
        inputs = tr.inputs()
        blocks = []
        for j in value_ix:
            out_t = tr.fn.results[j].type
            if not is_float(out_t.dtype):
                raise TypeError(f"jacobian requires float outputs, got {out_t} from '{name}'"
                                f"{_callsite()}")
            vfn = _differentiate(autodiff.vjp, optimize(project(tr.fn, [j])), wrt)
            rows = _vjp_rows(vfn, inputs, out_t, batch_function)
            shaped = [record.apply("reshape", r, shape=out_t.shape + tr.fn.params[k].type.shape)
                      for r, k in zip(rows, wrt)]
            blocks.append(_arg_trees(tr, argnums, shaped, single))
        value_tree = tr.out_tree.children[0] if has_aux else tr.out_tree
        jac = tree_unflatten(value_tree, blocks)
        if has_aux:
            aux_ix = list(range(len(value_ix), len(tr.fn.results)))
            return jac, tree_unflatten(tr.out_tree.children[1],
                                       apply_to(project(tr.fn, aux_ix), inputs))
        return jac
    return body


def _vjp_rows(vfn: Function, inputs, out_t, batch_function) -> list[Tensor]:
    """All rows of the Jacobian: vfn applied to every basis cotangent, batched (vmap)."""
    n = out_t.size
    nres = 1
    if n == 1:
        ct = record.apply("constant", value=1, dtype=out_t.dtype, shape=out_t.shape)
        return apply_to(vfn, inputs + [ct._expr])[nres:]
    flags = [False] * len(inputs) + [True]
    rows_fn = project(vfn, range(nres, len(vfn.results)))
    # every row gets the batch axis, also a cotangent that does not depend on the basis
    # (an output independent of the input: its Jacobian is zero, not a missing axis)
    batched, _ = batch_function(rows_fn, flags, n, out_batched=[True] * len(rows_fn.results))
    rows = record.apply("iota", dtype="i32", shape=(n, n), dim=0)
    cols = record.apply("iota", dtype="i32", shape=(n, n), dim=1)
    eye = record.apply("convert", record.apply("eq", rows, cols), dtype=out_t.dtype)
    basis = record.apply("reshape", eye, shape=(n,) + out_t.shape)
    return apply_to(batched, inputs + [basis._expr])
