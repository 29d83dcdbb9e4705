"""Reverse mode of scan: a taped forward scan, then an adjoint scan running the other way.

The body's joint primal + adjoint ops (transforms.vjp_joint) are split by a minimum cut
(ir/autodiff/partition.py) into what the forward loop saves per iteration and what the
adjoint loop recomputes from it:

- forward: the scan itself, whose body also returns the saved values as extra ys (the
  tape). Only values the adjoint reads are taped, never a whole carry it does not need;
- adjoint: a scan in the opposite direction carrying the carries' cotangents, reading the
  tape, the xs and the ys' cotangents, and stacking the xs' cotangents. A loop-invariant
  carry (the body returns it unchanged, like a captured weight) is not taped: the adjoint
  scan carries it along unchanged instead of saving length copies of it.

The forward rule runs before the cotangents are known, so it plans for every float
result having one; the adjoint rebuilds the joint with the cotangents it actually got and
finds the taped values by their position (partition.value_keys). With fewer cotangents
the adjoint needs a subset of what the plan saved.
"""
from __future__ import annotations

from dataclasses import dataclass

from ir.autodiff.common import zeros
from ir.autodiff.dce import dce_ops
from ir.autodiff.partition import adjoint_ops, saved_values, value_keys
from ir.autodiff.transforms import clone_function, vjp_joint
from ir.core import Function, Value, is_float


@dataclass
class ScanTape:
    """What the forward scan saved: the keys of the taped values and their stacks."""
    keys: list[tuple]
    stacks: list[Value]


def _floats(values) -> list[int]:
    return [i for i, v in enumerate(values) if is_float(v.dtype)]


def _wrt(operands, nc: int) -> tuple[list[int], list[int]]:
    """The body params that get cotangents: (float carries, float xs as param indices)."""
    return _floats(operands[:nc]), [nc + j for j in _floats(operands[nc:])]


def _free(body: Function, nc: int) -> list[int]:
    """The body params the adjoint gets without a tape: xs slices and invariant carries."""
    return [i for i, p in enumerate(body.params) if i >= nc or body.results[i] is p]


def scan_forward(b, *operands, num_carry, length, reverse, regions):
    """The scan, also stacking what its adjoint will read: (outs, ScanTape)."""
    (body,) = regions
    fc, fx = _wrt(operands, num_carry)
    j = vjp_joint(body, fc + fx)
    free = {j.params[i] for i in _free(body, num_carry)}
    keys = value_keys(j)
    taped = sorted((v for v in saved_values(j, free) if v not in free), key=keys.__getitem__)
    results = j.primal_results + taped
    ops = dce_ops(j.ops[:j.n_primal], results)
    region = clone_function(Function(f"{body.name}_taped", j.params, ops, results))
    res = b.emit("scan", *operands, num_carry=num_carry, length=length, reverse=reverse,
                 regions=(region,))
    n = len(body.results)
    return res[:n], ScanTape([keys[v] for v in taped], list(res[n:]))


def scan_adjoint(b, g, out, tape: ScanTape, *operands, num_carry, length, reverse, regions):
    """The adjoint scan (see the module docstring): cotangents of the float operands."""
    (body,) = regions
    nc, nx = num_carry, len(operands) - num_carry
    fc, fx = _wrt(operands, nc)
    gy = [k for k in range(nc, len(g)) if g[k] is not None]
    j = vjp_joint(body, fc + fx, [i in fc or i in gy for i in range(len(g))])
    by_key = {k: v for v, k in value_keys(j).items()}
    taped = [by_key[k] for k in tape.keys]
    free = _free(body, nc)
    stop = set(taped) | {j.params[i] for i in free} | set(j.ct_params)
    ops, live = adjoint_ops(j, stop)
    missing = [i for i, p in enumerate(j.params) if p in live and p not in stop]
    assert not missing, f"scan VJP: the adjoint of @{body.name} reads untaped carries {missing}"
    inv = [i for i in free if i < nc and j.params[i] in live]
    xs = [i - nc for i in free if i >= nc and j.params[i] in live]
    nfc = len(fc)
    params = (j.ct_params[:nfc] + [j.params[i] for i in inv] + taped
              + [j.params[nc + k] for k in xs] + j.ct_params[nfc:])
    results = j.grads[:nfc] + [j.params[i] for i in inv] + j.grads[nfc:]
    region = clone_function(Function(f"{body.name}_adjoint", params, ops, results))
    init = [zeros(b, operands[i].type) if g[i] is None else g[i] for i in fc]
    res = b.emit("scan", *init, *(operands[i] for i in inv), *tape.stacks,
                 *(operands[nc + k] for k in xs), *(g[k] for k in gy),
                 num_carry=nfc + len(inv), length=length, reverse=not reverse,
                 regions=(region,))
    cts = [None] * (nc + nx)
    for i, c in zip(fc + fx, list(res[:nfc]) + list(res[nfc + len(inv):])):
        cts[i] = c
    return tuple(cts)


def scan_vjp(b, g, out, *operands, **params):
    """The plain rule: reruns the forward scan for its tape (the vjp transform instead
    replaces the primal scan by the taped one: see transforms.vjp_tape_rules)."""
    _, tape = scan_forward(b, *operands, **params)
    return scan_adjoint(b, g, out, tape, *operands, **params)
