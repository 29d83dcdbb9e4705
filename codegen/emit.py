"""Emits the LLVM module of a Function: the entry point, one function per step, the workspace.

Calling convention of the exported entry: `void entry(ptr buffers, ptr workspace)`, where
buffers holds the inputs then the outputs (contiguous C-order arrays of their types, bool
one byte per element) and workspace is `workspace_bytes` bytes, 64-byte aligned. Offset 0
of the workspace is the error flag (an i32) of the bounds-check mode, offset 8 the thread
count (an i64, loops.THREADS_OFFSET) that the caller writes for parallel loop nests;
temporaries follow, each 64-byte aligned, then the workspace that regions of control-flow
ops share.

Each Function (the top level and every region) becomes an internal LLVM function
`void f(ptr buffers, ptr workspace, ptr err)` made of calls to one internal function per
plan step. A step function takes its buffers as separate `noalias` pointer arguments, which
is what lets LLVM vectorise without runtime alias checks. Step functions are `noinline`:
each is optimised on its own, so LLVM's time stays linear in program size (inlined into one
function, 500 loop nests took the loop vectoriser, IndVarSimplify and LICM ~12 s instead of
~1 s), at the price of one call per step.
"""
from __future__ import annotations

import hashlib

from llvmlite import ir as ll

from codegen.bounds_layout import check_workspace_layout
from codegen.buffers import Buffer, KernelContext, nbytes
from codegen.control import aux_types
from codegen.custom_call import lowered_regions
from codegen.elemental import Elemental
from codegen.dots import Externals
from codegen.fusion import KernelStep, LoopNest, Out, plan_function
from codegen.kernels import KernelCall, internal_rules, kernel_rules
from codegen.limits import check_index_range
from codegen.loops import I8, I32, PTR, mark_glue
from codegen.nest import NestEmitter
from codegen.records import Record
from ir.core import Function, TensorType, Value
from ir.printer import print_function

HEADER_BYTES = 64
ALIGN = 64
STEP_TYPE = ll.FunctionType(ll.VoidType(), [PTR, PTR, PTR])


class KernelSource(Record):
    """The LLVM IR of a Function and how to call it (see the module docstring):
    llvm_ir, entry, fn, in_types, out_types, workspace_bytes, and in profile mode
    profile_offset, where an (i64 cycles, i64 calls) pair per top-level step sits."""
    _fields = ("llvm_ir", "entry", "fn", "in_types", "out_types", "workspace_bytes",
               "profile_offset")
    _defaults = {"profile_offset": None}


class Aux(Record):
    """A scratch buffer (of `type`) in the workspace that a kernel step asked for."""
    _fields = ("type",)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class FunctionEmitter:
    """Lowers one Function (top level or region) to an internal LLVM function."""

    def __init__(self, module: ll.Module, fn: Function, symbol: str, bounds_check: bool,
                 externals: Externals | None = None, vmath: bool = True,
                 profile: bool = False, plans: dict | None = None):
        self.profile = profile          # count cycles per step (top level only)
        self.plans = plans or {}        # Function -> its fusion plan, made already
        self.module = module
        self.fn = fn
        self.symbol = symbol
        self.bounds_check = bounds_check
        self.externals = externals
        self.vmath = vmath
        self.param_index = {p: i for i, p in enumerate(fn.params)}

    def emit(self) -> tuple[ll.Function, int]:
        """Emits the function; returns it and the workspace bytes it needs."""
        self.plan = self.plans.get(self.fn)
        if self.plan is None:
            self.plan = plan_function(self.fn, self.externals)
        self.region_fns, region_bytes = {}, 0
        for step in self.plan.steps:
            if isinstance(step, KernelStep) and step.op.regions:
                fns = []
                for region in lowered_regions(step.op):
                    name = f"{self.symbol}.r{len(self.region_fns)}.{len(fns)}"
                    func, size = FunctionEmitter(self.module, region, name, self.bounds_check,
                                                 self.externals, self.vmath,
                                                 plans=self.plans).emit()
                    fns.append(func)
                    region_bytes = max(region_bytes, size)
                self.region_fns[step] = fns
        self.aux = {s: [Aux(t) for t in aux_types(s.op)]
                    for s in self.plan.steps if isinstance(s, KernelStep)}
        total = self._layout(region_bytes)
        if self.bounds_check:            # the constant offsets, proved (bounds_layout.py)
            spans = {t: (self.offsets[t], _align(nbytes(t.type))) for t in self.lives}
            check_workspace_layout(spans, self.lives, HEADER_BYTES, self.region_offset,
                                   region_bytes, total)
        if self.profile:
            self.profile_offset, total = total, total + 16 * len(self.plan.steps)
        self.func = ll.Function(self.module, STEP_TYPE, self.symbol)
        self.func.linkage = "internal"
        self.ctx = KernelContext(self.func, self.func.args[2], self.bounds_check, self.vmath)
        self.pointers = {}
        for k, step in enumerate(self.plan.steps):
            self._emit_step(k, step)
        self.ctx.finish()
        return self.func, total

    def _layout(self, region_bytes: int) -> int:
        """Places temporaries in the workspace; two share bytes only if their lives (the steps
        from the one writing it to the last one reading it) do not overlap."""
        temps = {v for v in self.plan.materialized if v not in self.plan.homes}
        temps.update(a for auxes in self.aux.values() for a in auxes)
        live = {}
        for k, step in enumerate(self.plan.steps):
            for key in self._step_keys(step):
                if key in temps:
                    live.setdefault(key, [k, k])[1] = k
        self.offsets, top, free, active = {}, HEADER_BYTES, [], []
        for t in sorted(live, key=lambda t: live[t][0]):
            start, size = live[t][0], _align(nbytes(t.type))
            for block in [b for b in active if b[0] < start]:
                active.remove(block)
                free.append(block[1:])
            fit = min((b for b in free if b[1] >= size), default=None, key=lambda b: b[1])
            if fit is None:
                offset, top = top, top + size
            else:
                free.remove(fit)
                offset = fit[0]
                if fit[1] > size:
                    free.append((offset + size, fit[1] - size))
            active.append((live[t][1], offset, size))
            self.offsets[t] = offset
        self.region_offset = top
        self.lives = live
        return _align(top + region_bytes)

    def _pointer(self, key):
        """The caller-side pointer of a buffer key (a Value, an Out or an Aux)."""
        ptr = self.pointers.get(key)
        if ptr is None:
            ptr = self._make_pointer(key)
            self.pointers[key] = ptr
        return ptr

    def _make_pointer(self, key):
        bld = self.ctx.bld
        bufs, ws = self.func.args[0], self.func.args[1]
        if isinstance(key, Value) and key in self.plan.homes:
            key = Out(self.plan.homes[key])
        if isinstance(key, Out) or key in self.param_index:
            n_in = len(self.fn.params)
            slot = n_in + key.index if isinstance(key, Out) else self.param_index[key]
            return bld.load(bld.gep(bufs, [ll.Constant(ll.IntType(64), slot)],
                                    source_etype=PTR), typ=PTR)
        offset = ll.Constant(ll.IntType(64), self.offsets[key])
        return bld.gep(ws, [offset], inbounds=True, source_etype=I8)

    def _key_type(self, key) -> TensorType:
        if isinstance(key, Out):
            return self.fn.results[key.index].type
        return key.type

    def _step_keys(self, step) -> list:
        if isinstance(step, LoopNest):
            keys = list(step.reads) + [r.key for r in step.roots]
        else:
            keys = list(step.op.inputs) + list(step.op.results) + self.aux[step]
        return list(dict.fromkeys(keys))

    def _emit_step(self, k: int, step):
        keys = self._step_keys(step)
        regions = self.region_fns.get(step, [])
        extra = [PTR] if regions else []
        fnty = ll.FunctionType(ll.VoidType(), [PTR] * len(keys) + extra + [PTR])
        func = ll.Function(self.module, fnty, f"{self.symbol}.s{k}")
        func.linkage = "internal"
        # NOTE: kept out of line: inlining hundreds of loop nests into one function makes
        # LLVM's loop passes (the vectoriser above all) superlinear in program size
        func.attributes.add("noinline")
        for arg in func.args[:len(keys)]:
            arg.add_attribute("noalias")
        ctx = KernelContext(func, func.args[-1], self.bounds_check, self.vmath)
        buffers = {key: Buffer(arg, self._key_type(key), ctx) for key, arg in zip(keys, func.args)}
        values = {key: b for key, b in buffers.items() if isinstance(key, Value)}
        em = Elemental(ctx, values, self.plan.producers)
        if isinstance(step, LoopNest):
            nest = NestEmitter(em, step, buffers, self.plan.producers)
            nest.emit()
            if nest.glue_only:
                mark_glue(func)
        else:
            call = KernelCall(step.op, em, [buffers[a] for a in self.aux[step]], regions,
                              func.args[len(keys)] if regions else None, self.externals)
            name = step.op.prim.name
            (kernel_rules.get(name) or internal_rules[name])(call)
        ctx.finish()
        args = [self._pointer(key) for key in keys]
        if regions:
            ws = self.func.args[1]
            args.append(self.ctx.bld.gep(ws, [ll.Constant(ll.IntType(64), self.region_offset)],
                                         inbounds=True, source_etype=I8))
        if not self.profile:
            self.ctx.bld.call(func, args + [self.func.args[2]])
            return
        bld, i64 = self.ctx.bld, ll.IntType(64)
        clock = self.module.declare_intrinsic("llvm.readcyclecounter", (), ll.FunctionType(i64, []))
        start = bld.call(clock, [])
        bld.call(func, args + [self.func.args[2]])
        cycles = bld.sub(bld.call(clock, []), start)
        for slot, amount in ((0, cycles), (8, ll.Constant(i64, 1))):
            offset = ll.Constant(i64, self.profile_offset + 16 * k + slot)
            ptr = bld.gep(self.func.args[1], [offset], inbounds=True, source_etype=I8)
            bld.store(bld.add(bld.load(ptr, typ=i64), amount), ptr)


def _sanitize(name: str) -> str:
    return "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in name)[:40]


def lower_function(fn: Function, bounds_check: bool = False,
                   externals: Externals | None = None, vmath: bool = True,
                   profile: bool = False, canonical: str | None = None,
                   plans: dict | None = None) -> KernelSource:
    """Lowers fn to an LLVM module with one exported entry (see the module docstring).

    Args:
        fn: the Function to compile (its regions are lowered too).
        bounds_check: check every buffer index at run time; a bad one sets the error flag
            at workspace offset 0 instead of touching memory outside the buffer.
        externals: native functions the code may call (codegen.dots.Externals: a BLAS gemm
            for big float dot_generals); None emits self-contained code.
        vmath: transcendental functions as codegen.vmath's straight-line code (vectorises);
            False calls LLVM intrinsics and libm instead.
        profile: count the cycles and calls of each top-level step in the workspace at
            KernelSource.profile_offset (runtime/profile.py reads them); off, no timing
            instruction is emitted.
        canonical: fn's canonical text (`print_function(fn, locs=False, hints=False)`) when
            the caller has it (the runtime printed it for its cache key), else printed here.
        plans: {Function: fusion plan} made already for fn or its regions with the same
            externals (codegen.tile_needs'), used instead of planning them again.
    """
    check_index_range(fn)       # before anything is emitted: 64-bit offsets must suffice
    # the symbol names the code exactly: same text and options, same machine code
    gemm = externals is not None and externals.gemm is not None
    options = f"bounds_check={bounds_check} gemm={gemm} vmath={vmath}"
    options += " profile" if profile else ""
    if canonical is None:
        canonical = print_function(fn, locs=False, hints=False)
    text = canonical + options
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    entry = f"gj_{_sanitize(fn.name)}_{digest}"
    module = ll.Module(name=entry)
    emitter = FunctionEmitter(module, fn, entry + ".body", bounds_check, externals, vmath,
                              profile, plans)
    body, workspace = emitter.emit()
    mark_glue(body)             # the top level: a call per step (regions' bodies run in loops)
    func = mark_glue(ll.Function(module, ll.FunctionType(ll.VoidType(), [PTR, PTR]), entry))
    bld = ll.IRBuilder(func.append_basic_block("entry"))
    if bounds_check:
        bld.store(ll.Constant(I32, 0), func.args[1])
    bld.call(body, [func.args[0], func.args[1], func.args[1]])
    bld.ret_void()
    return KernelSource(str(module), entry, fn, list(fn.param_types), list(fn.result_types),
                        workspace, emitter.profile_offset if profile else None)
