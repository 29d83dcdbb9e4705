"""Bounds checks for code that addresses buffers by raw pointers (small_gemm, lapack, sort,
the accumulators of codegen.nest).

Element loops index a Buffer (codegen.buffers), whose load and store check the index in
bounds-check mode. The small products compute their own addresses (batch offsets, rows,
packed tiles, vector rows), so in that mode they are emitted through a CheckedBuilder: an
IRBuilder that follows every pointer derived by `gep` or `bitcast` from a buffer it was told
about (or from a stack array) back to that buffer, as an element offset, and checks each
load and store of one element or one vector against the buffer's size. A buffer of structs
(the merge sort's pairs) is followed to the field too; a constant byte offset that is a
whole number of elements is followed as those elements. A bad access sets the
error flag (the runtime raises BoundsError) and goes to a stack slot instead, so the kernel
never touches foreign memory. An address the builder cannot follow is refused at compile
time (CheckError), so no access escapes the check unnoticed.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.bounds_layout import CheckError  # noqa: F401  (raised here, caught by callers)
from codegen.buffers import ERR_LOAD, ERR_STORE
from codegen.loops import I32, i64


STATS = {"checked": 0, "builders": 0}     # accesses emitted with a check, builders made


class CheckedBuilder:
    """bld, with the loads and stores through tracked pointers checked (module docstring).

    Everything but gep, bitcast, load and store is bld's own (`__getattr__`)."""

    def __init__(self, bld: ll.IRBuilder, ctx):
        self._bld = bld
        self._ctx = ctx
        self._where: dict = {}      # id(pointer) -> (pointer, (elem, size), element offset)
        self._scratch: dict = {}    # access type -> a stack slot bad accesses go to
        self._field: dict = {}      # id(pointer) -> the struct field it points at
        STATS["builders"] += 1

    def __getattr__(self, name):
        return getattr(self._bld, name)

    def track(self, ptr, elem: ll.Type, size: int):
        """ptr is the start of `size` elements of type elem."""
        self._where[id(ptr)] = (ptr, (elem, size), i64(0))
        return ptr

    def gep(self, ptr, indices, inbounds=False, name="", source_etype=None):
        out = self._bld.gep(ptr, indices, inbounds=inbounds, name=name, source_etype=source_etype)
        known = self._where.get(id(ptr))
        if known is not None and isinstance(known[1][0], ll.LiteralStructType) and \
                len(indices) == 2 and source_etype == known[1][0] and id(ptr) not in self._field:
            field = indices[1]          # &pairs[i].field
            if not isinstance(field, ll.Constant) or not 0 <= field.constant < \
                    len(known[1][0].elements):
                raise CheckError(f"unchecked address: field {field!r} of {known[1][0]}")
            self._where[id(out)] = (out, known[1], self._add(known[2], indices[0]))
            self._field[id(out)] = known[1][0].elements[field.constant]
            return out
        root, offset = self._follow(ptr, indices, source_etype)
        self._where[id(out)] = (out, root, offset)
        return out

    def _follow(self, ptr, indices, source_etype):
        """(root, element offset) of gep(ptr, indices)."""
        known = self._where.get(id(ptr))
        if known is None and isinstance(ptr, ll.AllocaInstr) and \
                isinstance(ptr.allocated_type, ll.ArrayType):      # a stack array
            array = ptr.allocated_type
            if len(indices) == 2 and source_etype in (None, array):
                row = self._mul(indices[0], array.count)
                return (array.element, array.count), self._add(row, indices[1])
        if known is not None and id(ptr) not in self._field and len(indices) == 1:
            if source_etype == known[1][0]:
                return known[1], self._add(known[2], indices[0])
            step = indices[0]       # a constant byte offset, whole elements of the buffer
            if source_etype == ll.IntType(8) and isinstance(step, ll.Constant) and \
                    step.constant % _bytes(known[1][0]) == 0:
                return known[1], self._add(known[2], i64(step.constant // _bytes(known[1][0])))
        raise CheckError(f"unchecked address: gep of {ptr!r} by {len(indices)} indices "
                         f"(element type {source_etype})")

    def _add(self, a, b):
        """a + b, folded when both are constants (so compile-time parts stay constants)."""
        if isinstance(a, ll.Constant) and isinstance(b, ll.Constant):
            return i64(a.constant + b.constant)
        return self._bld.add(a, b)

    def _mul(self, a, k: int):
        return i64(a.constant * k) if isinstance(a, ll.Constant) else self._bld.mul(a, i64(k))

    def bitcast(self, value, typ, name=""):
        out = self._bld.bitcast(value, typ, name=name)
        known = self._where.get(id(value))
        if known is not None:       # the same address, read as another pointer type
            self._where[id(out)] = (out, known[1], known[2])
            if id(value) in self._field:
                self._field[id(out)] = self._field[id(value)]
        return out

    def load(self, ptr, name="", align=None, typ=None):
        typ = typ if typ is not None else ptr.type.pointee
        return self._bld.load(self._checked(ptr, typ, ERR_LOAD), name=name, align=align, typ=typ)

    def store(self, value, ptr, align=None):
        return self._bld.store(value, self._checked(ptr, value.type, ERR_STORE), align=align)

    def span_ok(self, ptr, count: int, code: int):
        """An i1: whether `count` elements from ptr (a tracked pointer) stay inside its buffer
        (what an external call such as the BLAS's reads or writes); the error flag set if not."""
        known = self._where.get(id(ptr))
        if known is None:
            raise CheckError(f"unchecked address: span of {count} at {ptr!r}")
        STATS["checked"] += 1
        return self._check(known[1][1], known[2], count, code)

    def part(self, ptr, count: int):
        """Refuses (CheckError) a part of `count` elements at ptr, a tracked pointer at a
        constant offset, that does not lie in its buffer: a scratch carved at compile time."""
        known = self._where.get(id(ptr))
        offset = known[2] if known is not None else None
        if not isinstance(offset, ll.Constant) or not 0 <= offset.constant <= known[1][1] - count:
            raise CheckError(f"a part of {count} at {ptr!r} does not lie in its buffer")
        return ptr

    def _check(self, size: int, offset, count: int, code: int):
        """ok = offset + count <= size (unsigned: a negative offset is a huge one); the error
        flag gets code where not ok."""
        bld = self._bld
        if size < count:
            ok = ll.Constant(ll.IntType(1), 0)
        else:
            ok = bld.icmp_unsigned("<", offset, i64(size - count + 1))
        old = bld.load(self._ctx.err_ptr, typ=I32)
        bits = bld.select(ok, ll.Constant(I32, 0), ll.Constant(I32, code))
        bld.store(bld.or_(old, bits), self._ctx.err_ptr)
        return ok

    def _checked(self, ptr, typ, code: int):
        """ptr if an access of typ there stays inside its buffer, else a scratch slot (and
        the error flag set). A stack slot of exactly typ needs no check."""
        known = self._where.get(id(ptr))
        if known is None:
            if isinstance(ptr, ll.AllocaInstr) and ptr.allocated_type == typ:
                return ptr
            raise CheckError(f"unchecked address: access of {typ} at {ptr!r}")
        (elem, size), offset = known[1], known[2]
        elem = self._field.get(id(ptr), elem)
        vector = isinstance(typ, ll.VectorType)
        lanes = typ.count if vector else 1
        if (typ.element if vector else typ) != elem:
            raise CheckError(f"access of {typ} in a buffer of {elem}")
        bld = self._bld
        STATS["checked"] += 1
        ok = self._check(size, offset, lanes, code)
        slot = self._slot(typ)
        if slot.type != ptr.type:
            slot = bld.bitcast(slot, ptr.type)
        return bld.select(ok, ptr, slot)

    def _slot(self, typ):
        key = str(typ)
        if key not in self._scratch:
            slot = self._scratch[key] = self._ctx.alloca(typ, "bad_access")
            # zeroed: a bad load reads a defined value (LLVM may treat a branch on an
            # undefined one as unreachable and drop the code around it)
            with self._bld.goto_block(self._ctx.alloca_block):
                self._bld.store(ll.Constant(typ, None), slot)
        return self._scratch[key]


def _bytes(t: ll.Type) -> int:
    """The size in memory of an element type (structs as the C ABI lays them out)."""
    if isinstance(t, ll.LiteralStructType):
        size, align = 0, 1
        for e in t.elements:
            b = _bytes(e)
            size = -(-size // b) * b + b
            align = max(align, b)
        return -(-size // align) * align
    if isinstance(t, (ll.FloatType, ll.DoubleType)):
        return 4 if isinstance(t, ll.FloatType) else 8
    if isinstance(t, ll.PointerType):
        return 8
    return t.width // 8
