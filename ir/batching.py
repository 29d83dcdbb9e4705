"""vmap as an IR transform: a batching rule per primitive.

`batch_function(fn, in_batched, size)` rewrites fn so that the parameters flagged in
`in_batched` carry an extra leading axis of `size`; ops whose operands are all unbatched
are copied unchanged (they run once, not once per batch element), the others go through
`batch_rules[prim]`. Batched values always keep the batch axis first.

A rule is `rule(b, n, xs, flags, /, **params) -> list[(Value, batched)]`: `b` is the Builder,
`n` the batch size, `xs` the (new) operands, `flags` which of them are batched. Control
flow rules also get `regions=`.
"""
from __future__ import annotations

from ir.builder import Builder
from ir.core import Function, TensorType, Value
from ir.cumulative.rules import BATCH_RULES as CUMULATIVE_RULES
from ir.primitives import PRIMITIVES, having

batch_rules: dict = {}


class BatchingError(NotImplementedError):
    """A primitive has no batching rule, or an output cannot be unbatched."""


# ---- helpers -------------------------------------------------------------------------------

def bat(b: Builder, n: int, x: Value, flag: bool) -> Value:
    """x with a leading batch axis (broadcast if it has none yet)."""
    if flag:
        return x
    return b.broadcast_in_dim(x, shape=(n,) + x.shape, dims=tuple(range(1, x.ndim + 1)))


def moveaxis(b: Builder, x: Value, src: int, dst: int) -> Value:
    if src == dst:
        return x
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    return b.transpose(x, perm=tuple(perm))


def _shift(axes, k: int = 1) -> tuple:
    return tuple(a + k for a in axes)


def _emit(b: Builder, prim: str, *xs, regions=(), **params) -> list[Value]:
    out = b.emit(prim, *xs, regions=regions, **params)
    return list(out) if isinstance(out, tuple) else [out]


def _batched(values) -> list:
    return [(v, True) for v in values]


# ---- elementwise: the same op on operands that all carry the batch axis ---------------------

def _elementwise(name):
    def rule(b, n, xs, flags, /, **p):
        return _batched(_emit(b, name, *(bat(b, n, x, f) for x, f in zip(xs, flags)), **p))
    return rule


for _name in having(elementwise=True):
    batch_rules[_name] = _elementwise(_name)


# ---- shape ops -----------------------------------------------------------------------------

def _broadcast_in_dim(b, n, xs, flags, *, shape, dims):
    return _batched([b.broadcast_in_dim(xs[0], shape=(n,) + tuple(shape),
                                        dims=(0,) + _shift(dims))])


def _slice(b, n, xs, flags, *, start, limit, stride):
    return _batched([b.slice(xs[0], start=(0,) + tuple(start), limit=(n,) + tuple(limit),
                             stride=(1,) + tuple(stride))])


def _pad(b, n, xs, flags, *, lo, hi, interior):
    return _batched([b.pad(xs[0], lo=(0,) + tuple(lo), hi=(0,) + tuple(hi),
                           interior=(0,) + tuple(interior))])


def _concatenate(b, n, xs, flags, *, axis):
    return _batched([b.concatenate(*(bat(b, n, x, f) for x, f in zip(xs, flags)),
                                   axis=axis + 1)])


batch_rules.update({
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": lambda b, n, xs, flags, *, shape: _batched([b.reshape(xs[0],
                                                                     shape=(n,) + tuple(shape))]),
    "transpose": lambda b, n, xs, flags, *, perm: _batched([b.transpose(
        xs[0], perm=(0,) + _shift(perm))]),
    "slice": _slice,
    "pad": _pad,
    "concatenate": _concatenate,
})
for _name in having(kind="reduce"):
    batch_rules[_name] = (lambda name: lambda b, n, xs, flags, *, axes: _batched(
        _emit(b, name, xs[0], axes=_shift(axes))))(_name)
for _name in ("argmax", "argmin"):
    batch_rules[_name] = (lambda name: lambda b, n, xs, flags, *, axis: _batched(
        _emit(b, name, xs[0], axis=axis + 1)))(_name)


# ---- dot_general, gather, scatter_add ------------------------------------------------------

def _dot_general(b, n, xs, flags, *, contract, batch):
    (x, y), (fx, fy) = xs, flags
    (xc, yc), (xb, yb) = contract, batch
    if fx and fy:
        out = b.dot_general(x, y, contract=(_shift(xc), _shift(yc)),
                            batch=((0,) + _shift(xb), (0,) + _shift(yb)))
        return [(out, True)]
    if fx:
        out = b.dot_general(x, y, contract=(_shift(xc), yc), batch=(_shift(xb), yb))
        return [(moveaxis(b, out, len(xb), 0), True)]
    out = b.dot_general(x, y, contract=(xc, _shift(yc)), batch=(xb, _shift(yb)))
    x_free = x.ndim - len(xc) - len(xb)
    return [(moveaxis(b, out, len(xb) + x_free, 0), True)]


def _offset_indices(b, n, idx: Value, size: int) -> Value:
    """idx [n, I...] + (row number * size): indices into the batch axis merged with `size`."""
    rows = b.iota(dtype=idx.dtype, shape=idx.shape, dim=0)
    return b.add(idx, b.mul(rows, b.const(size, idx.dtype, idx.shape)))


def _merge_axis(b, x: Value, axis: int) -> Value:
    """x [n, pre..., N, post...] -> [n*N, pre..., post...] (axis is x's axis of N)."""
    x = moveaxis(b, x, axis, 1)
    return b.reshape(x, shape=(x.shape[0] * x.shape[1],) + x.shape[2:])


def _gather(b, n, xs, flags, *, axis):
    (x, idx), (fx, fi) = xs, flags
    if not fi:
        return [(b.gather(x, idx, axis=axis + 1), True)]
    if not fx:
        return [(moveaxis(b, b.gather(x, idx, axis=axis), axis, 0), True)]
    size = x.shape[axis + 1]
    out = b.gather(_merge_axis(b, x, axis + 1), _offset_indices(b, n, idx, size), axis=0)
    ni = idx.ndim - 1               # out is [n, I..., pre..., post...]: move pre before I
    perm = [0] + [1 + ni + k for k in range(axis)] + [1 + k for k in range(ni)]
    perm += list(range(1 + ni + axis, out.ndim))
    return [(b.transpose(out, perm=tuple(perm)), True)]


def _scatter_add(b, n, xs, flags, *, axis):
    (x, idx, upd), (fx, fi, fu) = xs, flags
    if not fi:
        return [(b.scatter_add(bat(b, n, x, fx), idx, bat(b, n, upd, fu), axis=axis + 1), True)]
    x, upd = bat(b, n, x, fx), bat(b, n, upd, fu)
    size = x.shape[axis + 1]
    # upd is [n, pre..., I..., post...]; scattering along the merged axis 0 wants
    # [n, I..., pre..., post...]
    ni = idx.ndim - 1
    perm = [0] + [1 + axis + k for k in range(ni)] + [1 + k for k in range(axis)]
    perm += list(range(1 + axis + ni, upd.ndim))
    upd = b.transpose(upd, perm=tuple(perm)) if perm != list(range(upd.ndim)) else upd
    out = b.scatter_add(_merge_axis(b, x, axis + 1), _offset_indices(b, n, idx, size), upd,
                        axis=0)
    out = b.reshape(out, shape=(n, size) + out.shape[1:])
    return [(moveaxis(b, out, 1, axis + 1), True)]


# no operands, so never batched; listed so that every primitive has an entry
for _name in (n for n, p in PRIMITIVES.items() if p.signature[0] == 0):
    batch_rules[_name] = (lambda name: lambda b, n, xs, flags, /, **p: [
        (v, False) for v in _emit(b, name, **p)])(_name)

batch_rules.update({"dot_general": _dot_general, "gather": _gather,
                    "scatter_add": _scatter_add})


# ---- the transform -------------------------------------------------------------------------

def batch_function(fn: Function, in_batched, size: int, out_batched=None):
    """fn with a leading batch axis of `size` on the flagged params.

    Args:
        fn: the Function to batch.
        in_batched: one bool per parameter.
        size: the batch size.
        out_batched: None to batch only the results that depend on batched inputs, or one
            bool per result: True forces a batch axis (broadcasting an unbatched result).

    Returns:
        (batched Function, one bool per result: whether it has the batch axis).

    Raises:
        BatchingError: a primitive has no rule, or out_batched asks to unbatch a result.
    """
    b = Builder()
    params, env = [], {}
    for p, flag in zip(fn.params, in_batched):
        t = TensorType(p.dtype, (size,) + p.shape) if flag else p.type
        params.append(Value(t, p.name_hint))
        env[p] = (params[-1], bool(flag))
    for op in fn.body:
        b.loc = op.loc
        vals = [env[v] for v in op.inputs]
        xs, flags = [v for v, _ in vals], [f for _, f in vals]
        if any(flags):
            outs = _apply_rule(b, op, size, xs, flags)
        else:
            outs = [(v, False) for v in _emit(b, op.prim.name, *xs, regions=op.regions,
                                              **op.params)]
        env.update(zip(op.results, outs))
    results = [env[r] for r in fn.results]
    want = [f for _, f in results] if out_batched is None else list(out_batched)
    final = []
    for i, ((v, f), w) in enumerate(zip(results, want)):
        if f and not w:
            raise BatchingError(f"vmap: result {i} of @{fn.name} depends on a batched input "
                                "but is required to be unbatched")
        final.append(bat(b, size, v, not w or f))
    return Function(fn.name, params, b.ops, final), want


def _apply_rule(b: Builder, op, size: int, xs, flags) -> list:
    rule = batch_rules.get(op.prim.name)
    if rule is None:
        raise BatchingError(f"no batching rule for primitive '{op.prim.name}'")
    kwargs = dict(op.params)
    if op.regions:
        kwargs["regions"] = op.regions
    return rule(b, size, xs, flags, **kwargs)


# ---- control flow --------------------------------------------------------------------------

def _either(a, c) -> list[bool]:
    return [x or y for x, y in zip(a, c)]


def _carry_fixpoint(body: Function, carry_flags, other_flags, n: int) -> list[bool]:
    """Which carries are batched: those batched on entry or made batched by the body."""
    carry_flags = list(carry_flags)
    while True:
        _, out = batch_function(body, carry_flags + list(other_flags), n)
        new = _either(carry_flags, out[:len(carry_flags)])
        if new == carry_flags:
            return carry_flags
        carry_flags = new


def _widen(b, n, xs, old_flags, new_flags) -> list[Value]:
    return [bat(b, n, x, f) if w else x for x, f, w in zip(xs, old_flags, new_flags)]


def _cond(b, n, xs, flags, *, regions):
    pred, ops, fp, fops = xs[0], xs[1:], flags[0], flags[1:]
    want = _either(batch_function(regions[0], fops, n)[1], batch_function(regions[1], fops, n)[1])
    if fp:
        want = [True] * len(want)
    tb, fb = (batch_function(r, fops, n, want)[0] for r in regions)
    if not fp:
        return list(zip(_emit(b, "cond", pred, *ops, regions=(tb, fb)), want))
    # a batched predicate: both branches run, each element picks its own (as jnp.where)
    outs = []
    for t, f in zip(b.inline(tb, ops), b.inline(fb, ops)):
        p = b.broadcast_in_dim(pred, shape=t.shape, dims=(0,))
        outs.append((b.select(p, t, f), True))
    return outs


def _fresh_params(fn: Function) -> list[Value]:
    return [Value(p.type, p.name_hint) for p in fn.params]


def _any_cond(cond_b: Function) -> Function:
    """A batched loop condition [n] reduced to 'any element still running' (bool[])."""
    b = Builder()
    params = _fresh_params(cond_b)
    (p,) = b.inline(cond_b, params)
    count = b.reduce_max(b.convert(p, dtype="i32"), axes=(0,))
    return Function(cond_b.name, params, b.ops, [b.gt(count, b.const(0, "i32"))])


def _masked_body(cond_b: Function, body_b: Function) -> Function:
    """The body applied only to the elements whose condition still holds."""
    b = Builder()
    params = _fresh_params(body_b)
    (p,) = b.inline(cond_b, params)
    new = b.inline(body_b, params)
    outs = [b.select(b.broadcast_in_dim(p, shape=v.shape, dims=(0,)), v, old)
            for v, old in zip(new, params)]
    return Function(body_b.name, params, b.ops, outs)


def _while(b, n, xs, flags, *, regions):
    cond_fn, body_fn = regions
    new_flags = _carry_fixpoint(body_fn, flags, [], n)
    if batch_function(cond_fn, new_flags, n)[1][0]:
        new_flags = [True] * len(xs)
    cond_b = batch_function(cond_fn, new_flags, n)[0]
    body_b = batch_function(body_fn, new_flags, n, new_flags)[0]
    if cond_b.results[0].shape:
        cond_b, body_b = _any_cond(cond_b), _masked_body(cond_b, body_b)
    outs = _emit(b, "while", *_widen(b, n, xs, flags, new_flags), regions=(cond_b, body_b))
    return list(zip(outs, new_flags))


def _scan(b, n, xs, flags, *, num_carry, length, reverse, regions):
    (body,) = regions
    xflags = list(flags[num_carry:])
    cflags = _carry_fixpoint(body, flags[:num_carry], xflags, n)
    want = cflags + batch_function(body, cflags + xflags, n)[1][num_carry:]
    body_b = batch_function(body, cflags + xflags, n, want)[0]
    carry = _widen(b, n, xs[:num_carry], flags[:num_carry], cflags)
    # the scanned axis stays first: batched xs go in as [length, n, ...]
    seqs = [moveaxis(b, x, 0, 1) if f else x for x, f in zip(xs[num_carry:], xflags)]
    outs = _emit(b, "scan", *carry, *seqs, regions=(body_b,), num_carry=num_carry,
                 length=length, reverse=reverse)
    ys = [moveaxis(b, y, 1, 0) if f else y for y, f in zip(outs[num_carry:], want[num_carry:])]
    return list(zip(outs[:num_carry] + ys, want))


batch_rules.update({"cond": _cond, "while": _while, "scan": _scan})


def _custom_call(name):
    """custom_vjp_call / custom_jvp_call: every operand gets the batch axis and so does
    every region's every parameter and result (the user's rules are batched like bodies)."""
    def rule(b, n, xs, flags, /, *, regions):
        regions_b = tuple(batch_function(r, [True] * len(r.params), n,
                                         [True] * len(r.results))[0] for r in regions)
        wide = [bat(b, n, x, f) for x, f in zip(xs, flags)]
        return _batched(_emit(b, name, *wide, regions=regions_b))
    return rule


batch_rules.update({name: _custom_call(name) for name in ("custom_vjp_call", "custom_jvp_call")})


def _debug_print(b, n, xs, flags, /, *, fmt, names, batch_dims):
    """Every operand gets the batch axis; the print then runs once per batch element."""
    wide = [bat(b, n, x, f) for x, f in zip(xs, flags)]
    return _batched(_emit(b, "debug_print", *wide, fmt=fmt, names=names,
                          batch_dims=batch_dims + 1))


batch_rules["debug_print"] = _debug_print



def _leading_batch(name):
    """The linear-algebra primitives map over leading batch axes already: the vmapped axis
    (moved first) is one more of them; an unbatched operand is broadcast along it."""
    def rule(b, n, xs, flags, /, **params):
        out = _emit(b, name, *(bat(b, n, x, f) for x, f in zip(xs, flags)), **params)
        return [(v, True) for v in out]
    return rule


batch_rules.update({name: _leading_batch(name)
                    for name in ("cholesky", "triangular_solve", "lu", "qr", "eigh", "svd")})
batch_rules.update(CUMULATIVE_RULES)     # cumsum, cumprod, ... (ir/cumulative)
