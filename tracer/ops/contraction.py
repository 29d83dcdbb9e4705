"""einsum: any number of operands, lowered to diagonals, sums, transposes and dot_generals.

Steps: parse the equation (`...` broadcasts right-aligned, implicit output = the labels
used once, in alphabetical order); per operand take diagonals of repeated labels (a strided
slice of the flattened pair of axes), drop size-1 axes that broadcast, and sum labels used
nowhere else; then contract operands left to right, each pair with one dot_general (shared
labels still needed later are batch axes, the others contracted); finally sum what the output
does not keep and transpose to its order.
"""
from __future__ import annotations

from ir.primitives import ShapeError
from tracer.ops.operands import cast, dtype_of, promote_types, to_tensor, user_error
from tracer.record import apply, torch_op

__all__ = ["einsum"]


def _parse_term(term: str, ndim: int | None, n_ell: int, where: str) -> list[str]:
    """A subscript string as labels; '...' becomes ell0.. (right-aligned to n_ell)."""
    if term.count("...") > 1 or "." in term.replace("...", ""):
        raise user_error(ValueError, f"einsum(): invalid ellipsis in '{term}' ({where})")
    head, _, tail = term.partition("...")
    for c in head + tail:
        if not c.isalpha():
            raise user_error(ValueError, f"einsum(): invalid subscript '{c}' in '{term}'")
    if "..." not in term:
        if ndim is not None and len(term) != ndim:
            raise user_error(ValueError, f"einsum(): the number of subscripts in '{term}' does "
                                         f"not match the number of dimensions ({ndim}) for "
                                         f"{where}")
        return list(term)
    k = n_ell if ndim is None else ndim - len(head) - len(tail)
    if k < 0:
        raise user_error(ValueError, f"einsum(): '{term}' has more subscripts than dimensions "
                                     f"({ndim}) for {where}")
    return list(head) + [f"ell{n_ell - k + j}" for j in range(k)] + list(tail)


def parse(equation: str, ndims: list[int]) -> tuple[list[list[str]], list[str]]:
    """(labels per operand, output labels)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise user_error(ValueError, f"einsum(): '{equation}' has {len(terms)} operand "
                                     f"subscripts but {len(ndims)} operands were given")
    n_ell = max((n - len(t.replace("...", "")) for t, n in zip(terms, ndims) if "..." in t),
                default=0)
    labels = [_parse_term(t, n, n_ell, f"operand {i}") for i, (t, n) in
              enumerate(zip(terms, ndims))]
    used = [lab for ls in labels for lab in ls]
    if arrow:
        out = _parse_term(rhs, None, n_ell, "the output")
        for lab in out:
            if lab not in used:
                raise user_error(ValueError, f"einsum(): output subscript {lab} does not appear "
                                             "in the equation for any input operand")
            if out.count(lab) > 1:
                raise user_error(ValueError, f"einsum(): output subscript {lab} appears more "
                                             "than once in the output")
    else:
        ell = [f"ell{j}" for j in range(n_ell)]
        out = ell + sorted(lab for lab in set(used) if len(lab) == 1 and used.count(lab) == 1)
    return labels, out


def _sizes(labels, tensors) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for i, (ls, t) in enumerate(zip(labels, tensors)):
        for lab, n in zip(ls, t.shape):
            seen = sizes.get(lab, 1)
            if n != 1 and seen != 1 and n != seen:
                raise user_error(ShapeError, f"einsum(): subscript {lab} has size {n} for "
                                             f"operand {i} which does not broadcast with "
                                             f"previously seen size {seen}")
            sizes[lab] = max(seen, n)
    return sizes


def _diagonal(t, ls: list[str], lab: str):
    """The diagonal over the first two axes labelled lab (as the new last axis)."""
    a, b = [i for i, x in enumerate(ls) if x == lab][:2]
    n = t.shape[a]
    if t.shape[b] != n:
        raise user_error(ShapeError, f"einsum(): subscript {lab} is repeated but the sizes "
                                     f"don't match, {n} != {t.shape[b]}")
    rest = [i for i in range(t.ndim) if i not in (a, b)]
    perm = tuple(rest) + (a, b)
    if perm != tuple(range(t.ndim)):
        t = apply("transpose", t, perm=perm)
    lead = tuple(t.shape[:-2])
    t = apply("reshape", t, shape=lead + (n * n,))
    k = len(lead) + 1
    t = apply("slice", t, start=(0,) * k, limit=lead + (n * n,), stride=(1,) * (k - 1) + (n + 1,))
    return t, [ls[i] for i in rest] + [lab]


def _prepare(t, ls: list[str], keep: set, sizes: dict):
    """Diagonals, broadcasting size-1 axes dropped, labels needed nowhere else summed."""
    for lab in list(dict.fromkeys(ls)):
        while ls.count(lab) > 1:
            t, ls = _diagonal(t, ls, lab)
    drop = [i for i, lab in enumerate(ls) if t.shape[i] == 1 and sizes[lab] != 1]
    if drop:
        t = apply("reshape", t, shape=tuple(d for i, d in enumerate(t.shape) if i not in drop))
        ls = [lab for i, lab in enumerate(ls) if i not in drop]
    return _sum_out(t, ls, keep)


def _sum_out(t, ls: list[str], keep: set):
    axes = tuple(i for i, lab in enumerate(ls) if lab not in keep)
    if axes:
        t = apply("reduce_sum", t, axes=axes)
        ls = [lab for lab in ls if lab in keep]
    return t, ls


def _contract(a, la, b, lb, later: set):
    """One dot_general: shared labels needed later are batch axes, the rest contracted."""
    a, la = _sum_out(a, la, later | set(lb))
    b, lb = _sum_out(b, lb, later | set(la))
    batch = [lab for lab in la if lab in lb and lab in later]
    contract = [lab for lab in la if lab in lb and lab not in later]
    dims = ((tuple(la.index(x) for x in contract), tuple(lb.index(x) for x in contract)),
            (tuple(la.index(x) for x in batch), tuple(lb.index(x) for x in batch)))
    out = apply("dot_general", a, b, contract=dims[0], batch=dims[1])
    labels = batch + [x for x in la if x not in lb] + [x for x in lb if x not in la]
    return out, labels


@torch_op("View", saves=tuple(range(1, 33)))   # every operand (positions past the end are skipped)
def einsum(equation: str, *operands):
    """Einstein summation, e.g. einsum('bij,bjk->bik', a, b); operands may also be a list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise user_error(ValueError, "einsum(): must provide at least one operand")
    ts = [to_tensor(o) for o in operands]
    dtype = None
    for t in ts:
        dtype = promote_types(dtype, dtype_of(t))
    ts = [cast(t, dtype) for t in ts]
    labels, out = parse(equation, [t.ndim for t in ts])
    sizes = _sizes(labels, ts)
    ops = []
    for i, (t, ls) in enumerate(zip(ts, labels)):
        others = {lab for j, other in enumerate(labels) if j != i for lab in other}
        ops.append(_prepare(t, list(ls), set(out) | others, sizes))
    while len(ops) > 1:
        (a, la), (b, lb) = ops[0], ops[1]
        later = set(out) | {lab for _, ls in ops[2:] for lab in ls}
        ops = [_contract(a, la, b, lb, later)] + ops[2:]
    t, ls = _sum_out(*ops[0], set(out))
    perm = tuple(ls.index(lab) for lab in out)
    if perm != tuple(range(len(perm))):
        t = apply("transpose", t, perm=perm)
    return t if t is not ts[0] else apply("reshape", t, shape=tuple(t.shape))
