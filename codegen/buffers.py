"""Buffers (materialised tensors in memory) and the per-LLVM-function emission context.

A Buffer is a pointer to a contiguous C-order array of its TensorType; bool is stored as one
byte and held in registers as i1. In bounds-check mode every load and store compares its
linear index with the buffer size; a bad index sets the error flag (an i32 the runtime reads
after the call) and is redirected to element 0, so the kernel never touches foreign memory.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.loops import I1, I8, I32, i64
from codegen.lower import LLVM_TYPES, const
from ir.core import TensorType

ERR_LOAD = 1    # error flag bits, decoded by the runtime
ERR_STORE = 2


def storage_type(dtype: str) -> ll.Type:
    """The in-memory LLVM type of one element (bool is a byte)."""
    return I8 if dtype == "bool" else LLVM_TYPES[dtype]


class KernelContext:
    """Emission state of one LLVM function: its builder, its alloca block, the options.

    Allocas go to the first block so that mem2reg turns accumulators into SSA registers.
    """

    def __init__(self, func: ll.Function, err_ptr, bounds_check: bool, vmath: bool = True):
        self.func = func
        self.alloca_block = func.append_basic_block("allocas")
        self.bld = ll.IRBuilder(func.append_basic_block("start"))
        self.err_ptr = err_ptr
        self.bounds_check = bounds_check
        self.vmath = vmath              # transcendentals from codegen.vmath (else libm)

    @property
    def module(self) -> ll.Module:
        return self.func.module

    def alloca(self, ty: ll.Type, name: str = "acc"):
        with self.bld.goto_block(self.alloca_block):
            return self.bld.alloca(ty, name=name)

    def finish(self):
        """Terminates the function: returns from the current block, links the alloca block."""
        self.bld.ret_void()
        with self.bld.goto_block(self.alloca_block):
            self.bld.branch(self.func.blocks[1])

    def flag_error(self, bad, code: int):
        """err |= code where bad (an i1) holds; only used in bounds-check mode."""
        bld = self.bld
        old = bld.load(self.err_ptr, typ=I32)
        bits = bld.select(bad, ll.Constant(I32, code), ll.Constant(I32, 0))
        bld.store(bld.or_(old, bits), self.err_ptr)


class Buffer:
    """A materialised tensor: `ptr` to `type.size` contiguous elements."""

    def __init__(self, ptr, type: TensorType, ctx: KernelContext):
        self.ptr = ptr
        self.type = type
        self.ctx = ctx
        self.elem = storage_type(type.dtype)

    def element_ptr(self, linear):
        return self.ctx.bld.gep(self.ptr, [linear], inbounds=True, source_etype=self.elem)

    def _checked(self, linear, code: int):
        """The index to use: linear itself, or 0 (with the error flag set) when out of range."""
        if not self.ctx.bounds_check:
            return linear
        bld = self.ctx.bld
        ok = bld.icmp_unsigned("<", linear, i64(self.type.size))
        self.ctx.flag_error(bld.not_(ok), code)
        return bld.select(ok, linear, i64(0))

    def load(self, linear):
        """The element at a C-order linear index, as a register value."""
        bld = self.ctx.bld
        if self.type.size == 0:        # nothing to read: only reachable in dead code
            if self.ctx.bounds_check:
                self.ctx.flag_error(ll.Constant(I1, 1), ERR_LOAD)
            return const(LLVM_TYPES[self.type.dtype], 0)
        linear = self._checked(linear, ERR_LOAD)
        v = bld.load(self.element_ptr(linear), typ=self.elem, align=self.elem_align)
        return bld.icmp_unsigned("!=", v, ll.Constant(I8, 0)) if self.type.dtype == "bool" else v

    def store(self, linear, value):
        bld = self.ctx.bld
        if self.type.size == 0:
            if self.ctx.bounds_check:
                self.ctx.flag_error(ll.Constant(I1, 1), ERR_STORE)
            return
        linear = self._checked(linear, ERR_STORE)
        if self.type.dtype == "bool":
            value = bld.zext(value, I8)
        bld.store(value, self.element_ptr(linear), align=self.elem_align)

    @property
    def elem_align(self) -> int:
        return {"bool": 1, "i32": 4, "f32": 4}.get(self.type.dtype, 8)

    def byte_offset_ptr(self, byte_offset):
        """A pointer byte_offset bytes into the buffer (for slices along axis 0)."""
        return self.ctx.bld.gep(self.ptr, [byte_offset], inbounds=True, source_etype=I8)


def nbytes(t: TensorType) -> int:
    return t.size * t.np_dtype.itemsize

