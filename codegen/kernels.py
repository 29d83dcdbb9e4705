"""Kernel rules: primitives that are not computed element by element.

`kernel_rules[name](k: KernelCall)` emits the whole op into its own LLVM function; the
operands and results are Buffers (codegen.fusion materialises them). Control flow lives in
codegen.control and registers itself here.

dot_general reaching this table is a plain loop nest (batch, x-free, contract, y-free order:
the innermost loop walks y and the output contiguously, so it vectorises); each output element
sums its products in contract order, deterministically. Big float products never get here:
codegen.dots turns them into calls to the BLAS gemm (its kernel is in `internal_rules`).
"""
from __future__ import annotations


from codegen.buffers import Buffer
from codegen.elemental import clamp_index
from codegen.lower import LLVM_TYPES, const, scalar_rules
from codegen.loops import for_nest, for_range
from codegen.records import Record
from ir.core import Op, dot_free_axes

kernel_rules: dict = {}
# kernels of codegen-internal ops (not IR primitives, so kept out of lower_rules): dots' gemm
internal_rules: dict = {}


class KernelCall(Record):
    """What a kernel rule gets: the op, an elemental emitter `em` over its buffers, extra
    space: aux (scratch Buffers: control flow carries), regions (LLVM functions of the op's
    regions), region_ws (the workspace pointer handed to regions), externals
    (codegen.dots.Externals of the runtime)."""
    _fields = ("op", "em", "aux", "regions", "region_ws", "externals")
    _defaults = {"region_ws": None, "externals": None}
    _factories = {"aux": list, "regions": list}

    @property
    def bld(self):
        return self.em.bld

    def buffer(self, v) -> Buffer:
        return self.em.buffers[v]


def fill(bld, buf: Buffer, value):
    with for_range(bld, buf.type.size, "fill") as i:
        buf.store(i, value)


def dot_axes(op: Op) -> tuple[list, ...]:
    """A dot_general's axes: x's batch, contract and free axes, then y's."""
    x, y = op.inputs
    (xc, yc), (xb, yb) = op.params["contract"], op.params["batch"]
    return (list(xb), list(xc), list(dot_free_axes(x.ndim, xc, xb)),
            list(yb), list(yc), list(dot_free_axes(y.ndim, yc, yb)))


def _place(ndim: int, groups) -> list:
    """Builds a multi-index from (axes, loop variables) pairs."""
    dims = [None] * ndim
    for axes, values in groups:
        for a, v in zip(axes, values):
            dims[a] = v
    return dims


def _dot_general(k: KernelCall):
    em, bld, op = k.em, k.bld, k.op
    x, y = op.inputs
    out = k.buffer(op.results[0])
    xb, xc, xfree, yb, yc, yfree = dot_axes(op)
    fill(bld, out, const(LLVM_TYPES[x.dtype], 0))
    add, mul = scalar_rules["add"], scalar_rules["mul"]
    with em.scope(), for_nest(bld, [x.shape[a] for a in xb], "b") as b:
        with for_nest(bld, [x.shape[a] for a in xfree], "i") as i:
            with for_nest(bld, [x.shape[a] for a in xc], "k") as kk:
                xv = em.gen(x, em.index(x.shape, _place(x.ndim, [(xb, b), (xfree, i), (xc, kk)])))
                with for_nest(bld, [y.shape[a] for a in yfree], "j") as j:
                    yi = em.index(y.shape, _place(y.ndim, [(yb, b), (yc, kk), (yfree, j)]))
                    lin = em.index(out.type.shape, b + i + j).linear
                    out.store(lin, add(bld, out.load(lin), mul(bld, xv, em.gen(y, yi))))


def _scatter_add(k: KernelCall):
    em, bld, op = k.em, k.bld, k.op
    x, ind, upd = op.inputs
    axis, n = op.params["axis"], ind.ndim
    out = k.buffer(op.results[0])
    with em.scope(), for_nest(bld, x.shape, "c") as d:
        idx = em.index(x.shape, d)
        out.store(idx.linear, em.gen(x, idx))
    if x.shape[axis] == 0:
        return
    # C order over the updates: each output element receives its updates in index order,
    # exactly as np.add.at applies them
    with em.scope(), for_nest(bld, upd.shape, "u") as u:
        j = em.gen(ind, em.index(ind.shape, u[axis:axis + n]))
        dims = u[:axis] + [clamp_index(bld, j, x.shape[axis])] + u[axis + n:]
        lin = em.index(x.shape, dims).linear
        val = scalar_rules["add"](bld, out.load(lin), em.gen(upd, em.index(upd.shape, u)))
        out.store(lin, val)


kernel_rules["dot_general"] = _dot_general
kernel_rules["scatter_add"] = _scatter_add
