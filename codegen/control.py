"""Kernel rules for structured control flow: cond, while and scan, as native branches and loops.

Every region is lowered (by codegen.emit, recursively) into an internal LLVM function with
the same calling convention as the kernel itself, `void region(ptr buffers, ptr workspace,
ptr err)`, its buffers being its parameters then its results. The caller builds the pointer
array: operand buffers, and for loops the carry buffers, which ping-pong between the op's
result buffers and scratch buffers (`aux`) so a body never reads what it writes. scan hands
its body pointers into xs and ys (slices along axis 0 are contiguous), so ys are written in
place. A scan carry that the body returns unchanged (closed-over weights) does not ping-pong:
`prepare_loop` (run by codegen.fusion) drops it from the body's results and every step reads
the one result buffer. Regions share the caller's region workspace: they never run at the
same time.

A `while` loop can run forever, so it polls for Ctrl-C: each iteration reads the i32 flag
word INTERRUPT_FLAG (runtime.interrupt's, set by a SIGINT handler while the kernel runs) and
when it is nonzero leaves the loop with ERR_INTERRUPT set in the error word; the runtime turns
that into KeyboardInterrupt.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.bounds import CheckedBuilder, CheckError
from codegen.buffers import ERR_LOAD, ERR_STORE, Buffer, nbytes
from codegen.kernels import KernelCall, kernel_rules
from codegen.loops import I1, I8, I32, I64, PTR, declare, for_range, i64
from codegen.sorting import scratch_types as sort_scratch_types
from ir.core import Function, Op, TensorType


def aux_types(op: Op) -> list[TensorType]:
    """Scratch buffers a control op needs from its caller's workspace."""
    name = op.prim.name
    if name == "sort":                        # not control flow: its rows' scratch
        return sort_scratch_types(op)
    if name == "while":
        return [r.type for r in op.results] + [TensorType("bool", ())]
    if name == "scan":
        invariant = op.params.get("invariant", ())
        return [r.type for j, r in enumerate(op.results[:op.params["num_carry"]])
                if j not in invariant]
    return []


def copy(bld, dst: Buffer, src: Buffer):
    """dst = src, all of dst's bytes (in bounds-check mode only if src has as many)."""
    size = nbytes(dst.type)
    if not size:
        return
    fn = declare(bld.module, "llvm.memcpy.p0.p0.i64", ll.VoidType(), [PTR, PTR, I64, I1])
    if not dst.ctx.bounds_check:
        bld.call(fn, [dst.ptr, src.ptr, i64(size), ll.Constant(I1, 0)])
        return
    checked = CheckedBuilder(bld, dst.ctx)
    ok = [checked.span_ok(checked.track(b.ptr, I8, nbytes(b.type)), size, code)
          for b, code in ((dst, ERR_STORE), (src, ERR_LOAD))]
    with bld.if_then(bld.and_(*ok)):
        bld.call(fn, [dst.ptr, src.ptr, i64(size), ll.Constant(I1, 0)])


def pointer_array(k: KernelCall, ptrs) -> ll.Value:
    """A stack array of pointers, filled at the current position."""
    bld = CheckedBuilder(k.bld, k.em.ctx) if k.em.ctx.bounds_check else k.bld
    arr = k.em.ctx.alloca(ll.ArrayType(PTR, max(len(ptrs), 1)), "bufs")
    for i, p in enumerate(ptrs):
        bld.store(p, bld.gep(arr, [i64(0), i64(i)], inbounds=True))
    return arr


def call_region(k: KernelCall, which: int, arr):
    k.bld.call(k.regions[which], [arr, k.region_ws, k.em.ctx.err_ptr])


def _cond(k: KernelCall):
    bld, op = k.bld, k.op
    pred, *operands = op.inputs
    ptrs = [k.buffer(v).ptr for v in operands] + [k.buffer(r).ptr for r in op.results]
    arr = pointer_array(k, ptrs)
    with bld.if_else(k.buffer(pred).load(i64(0))) as (then, otherwise):
        with then:
            call_region(k, 0, arr)
        with otherwise:
            call_region(k, 1, arr)


def _while(k: KernelCall):
    bld, op = k.bld, k.op
    n = len(op.results)
    a, b, pred = [k.buffer(r) for r in op.results], k.aux[:n], k.aux[n]
    for dst, x in zip(a, op.inputs):
        copy(bld, dst, k.buffer(x))
    cond_arrays = [pointer_array(k, [c.ptr for c in carry] + [pred.ptr]) for carry in (a, b)]
    body_arrays = [pointer_array(k, [c.ptr for c in src + dst]) for src, dst in ((a, b), (b, a))]
    pre = bld.block
    head, body, end = (bld.append_basic_block(f"while.{s}") for s in ("head", "body", "end"))
    bld.branch(head)
    bld.position_at_end(head)
    phase = bld.phi(I1, name="phase")          # 0: the carry is in a, 1: in b
    phase.add_incoming(ll.Constant(I1, 0), pre)
    call_region(k, 0, bld.select(phase, cond_arrays[1], cond_arrays[0]))
    poll, stop = bld.append_basic_block("while.poll"), bld.append_basic_block("while.stop")
    bld.cbranch(pred.load(i64(0)), poll, end)
    bld.position_at_end(poll)
    # atomic, so LLVM never hoists the load out of the loop (the body cannot write it)
    flag = bld.load_atomic(interrupt_flag(bld.module), "monotonic", 4, typ=I32)
    bld.cbranch(bld.icmp_unsigned("!=", flag, ll.Constant(I32, 0)), stop, body)
    bld.position_at_end(stop)
    err = k.em.ctx.err_ptr
    bld.store(bld.or_(bld.load(err, typ=I32), ll.Constant(I32, ERR_INTERRUPT)), err)
    bld.branch(end)
    bld.position_at_end(body)
    call_region(k, 1, bld.select(phase, body_arrays[1], body_arrays[0]))
    phase.add_incoming(bld.not_(phase), bld.block)
    bld.branch(head)
    bld.position_at_end(end)
    with bld.if_then(phase):
        for dst, src in zip(a, b):
            copy(bld, dst, src)


INTERRUPT_FLAG = "gradjit_interrupt_flag"      # runtime.interrupt.SYMBOL
ERR_INTERRUPT = 4                              # runtime.interrupt.ERR_INTERRUPT


def interrupt_flag(module: ll.Module) -> ll.GlobalVariable:
    """The external i32 flag word that a SIGINT sets (declared once per module)."""
    flag = module.globals.get(INTERRUPT_FLAG)
    if flag is None:
        flag = ll.GlobalVariable(module, I32, INTERRUPT_FLAG)
        flag.linkage = "external"
    return flag


def _slice_ptr(bld, buf: Buffer, i, slice_bytes: int, code: int = 0):
    if slice_bytes == 0:
        return buf.ptr
    return buf.byte_offset_ptr(bld.mul(i, i64(slice_bytes), flags=("nuw", "nsw")))



def invariant_carries(op: Op) -> tuple:
    """The carries of a scan that its body returns unchanged (weights closed over, say)."""
    if op.prim.name != "scan":
        return ()
    if "invariant" in op.params:          # prepared already: they left the body's results
        return op.params["invariant"]
    body, nc = op.regions[0], op.params["num_carry"]
    return tuple(j for j in range(nc) if body.results[j] is body.params[j])


def prepare_loop(op: Op) -> Op:
    """A scan whose invariant carries leave its body's results (params["invariant"]): the
    kernel then hands the body one buffer for them on every step instead of copying them
    from step to step (a 256 KB weight matrix per step in an LSTM)."""
    if "invariant" in op.params:
        return op
    invariant = invariant_carries(op)
    if not invariant:
        return op
    body = op.regions[0]
    results = [r for j, r in enumerate(body.results) if j not in invariant]
    region = Function(body.name, body.params, body.body, results)
    params = {**op.params, "invariant": invariant}
    return Op(op.prim, op.inputs, op.results, params, (region,), op.loc)


def _scan(k: KernelCall):
    bld, op, p = k.bld, k.op, k.op.params
    nc, length = p["num_carry"], p["length"]
    invariant = p.get("invariant", ())
    a = [k.buffer(r) for r in op.results[:nc]]
    moving = [j for j in range(nc) if j not in invariant]
    b = dict(zip(moving, k.aux))
    xs, ys = [k.buffer(x) for x in op.inputs[nc:]], [k.buffer(r) for r in op.results[nc:]]
    for dst, x in zip(a, op.inputs[:nc]):
        copy(bld, dst, k.buffer(x))
    arr = k.em.ctx.alloca(ll.ArrayType(PTR, max(nc + len(moving) + len(xs) + len(ys), 1)),
                          "bufs")
    checked = _ScanChecks(k, a, b) if k.em.ctx.bounds_check else None
    with for_range(bld, length, "step") as t:
        i = bld.sub(i64(length - 1), t) if p["reverse"] else t
        phase = bld.trunc(t, I1)                # even steps read a, odd steps read b
        ptrs = [a[j].ptr if j in invariant else bld.select(phase, b[j].ptr, a[j].ptr)
                for j in range(nc)]
        slice_ptr = _slice_ptr if checked is None else checked.slice_ptr
        ptrs += [slice_ptr(bld, x, i, nbytes(x.type) // max(length, 1), ERR_LOAD) for x in xs]
        ptrs += [bld.select(phase, a[j].ptr, b[j].ptr) for j in moving]
        ptrs += [slice_ptr(bld, y, i, nbytes(y.type) // max(length, 1), ERR_STORE)
                 for y in ys]
        store = bld if checked is None else checked.bld
        for j, ptr in enumerate(ptrs):
            store.store(ptr, store.gep(arr, [i64(0), i64(j)], inbounds=True))
        if checked is None:
            call_region(k, 0, arr)
        else:           # a step whose slices leave their buffers is not run
            with bld.if_then(checked.take_ok()):
                call_region(k, 0, arr)
    if length % 2:
        for j in moving:
            copy(bld, a[j], b[j])


class _ScanChecks:
    """Bounds-check mode of a scan: each step's xs and ys slices are checked to lie in
    their buffers, and the carries' two buffers to have the same size."""

    def __init__(self, k: KernelCall, a: list, b: dict):
        for j, scratch in b.items():
            if nbytes(scratch.type) != nbytes(a[j].type):
                raise CheckError(f"scan carry {j}: {scratch.type} scratch for {a[j].type}")
        self.bld = CheckedBuilder(k.bld, k.em.ctx)
        self.ok = []

    def slice_ptr(self, bld, buf: Buffer, i, slice_bytes: int, code: int):
        """_slice_ptr's pointer, its span checked (the result kept for take_ok)."""
        checked = self.bld
        base = checked.track(buf.ptr, I8, nbytes(buf.type))
        ptr = checked.gep(base, [bld.mul(i, i64(slice_bytes), flags=("nuw", "nsw"))],
                          inbounds=True, source_etype=I8) if slice_bytes else base
        self.ok.append(checked.span_ok(ptr, slice_bytes, code))
        return ptr

    def take_ok(self):
        """An i1: all slices checked since the last call lie in their buffers."""
        ok = ll.Constant(I1, 1)
        for one in self.ok:
            ok = self.bld.and_(ok, one)
        self.ok = []
        return ok


kernel_rules.update({"cond": _cond, "while": _while, "scan": _scan})
