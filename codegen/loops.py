"""Loop and constant helpers for llvmlite IRBuilder code, in the style of numba's cgutils.

    with for_range(bld, 128, "i") as i:     # i is an i64 running 0..127
        ...                                  # bld is positioned in the loop body

Loops are emitted in the canonical shape LLVM's loop passes expect (preheader, header with
one phi, body, latch, exit), so rotation, unrolling and vectorisation apply to them.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

from llvmlite import ir as ll

I1 = ll.IntType(1)
I8 = ll.IntType(8)
I32 = ll.IntType(32)
I64 = ll.IntType(64)
PTR = ll.PointerType()
INT_FLAGS = ("nuw", "nsw")      # index arithmetic never wraps: every index is in [0, size)


# NOTE: glue (the entry, the top-level body, a parallel nest's dispatch, parallel_for) runs
# once per call and holds no loop worth optimising, yet the O1 pipeline spent ~15% of chain's
# LLVM time on it. `optnone` skips the pipeline for it and selects its instructions the fast
# way; the loops it calls are optimised as before (chain: pipeline 51 -> 36 ms with the rows
# inlined early, nest.py; 2-core Zen 3, CPU time, median of 9 in one process).
GLUE_ATTRIBUTES = ("noinline", "optnone")


def mark_glue(fn: ll.Function) -> ll.Function:
    """fn is glue: compiled without optimisation (see GLUE_ATTRIBUTES)."""
    for attribute in GLUE_ATTRIBUTES:
        fn.attributes.add(attribute)
    return fn


def i64(v: int) -> ll.Constant:
    return ll.Constant(I64, int(v))


@contextmanager
def for_range(bld: ll.IRBuilder, count, name: str = "i", start=0):
    """Emits `for i in range(start, count)` and yields i; bld is left in the exit block.

    count and start are Python ints or i64 values.
    """
    count = i64(count) if isinstance(count, int) else count
    start = i64(start) if isinstance(start, int) else start
    pre = bld.block
    header = bld.append_basic_block(f"{name}.head")
    body = bld.append_basic_block(f"{name}.body")
    end = bld.append_basic_block(f"{name}.end")
    bld.branch(header)
    bld.position_at_end(header)
    i = bld.phi(I64, name=name)
    i.add_incoming(start, pre)
    bld.cbranch(bld.icmp_signed("<", i, count), body, end)
    bld.position_at_end(body)
    yield i
    nxt = bld.add(i, i64(1), name=f"{name}.next", flags=INT_FLAGS)
    i.add_incoming(nxt, bld.block)
    bld.branch(header)
    bld.position_at_end(end)


@contextmanager
def for_nest(bld: ll.IRBuilder, shape, name: str = "i"):
    """Nested for_range over every index of shape (C order: the last axis innermost).

    Yields the list of loop variables (i64). A size-1 axis gets the constant 0 and no loop.
    """
    with _nest(bld, tuple(shape), name, []) as dims:
        yield dims


@contextmanager
def _nest(bld, shape, name, dims):
    if len(dims) == len(shape):
        yield list(dims)
        return
    size = shape[len(dims)]
    if size == 1:
        with _nest(bld, shape, name, dims + [i64(0)]) as inner:
            yield inner
        return
    with for_range(bld, size, f"{name}{len(dims)}") as i:
        with _nest(bld, shape, name, dims + [i]) as inner:
            yield inner


# index arithmetic on Python ints and i64 values alike: ints stay ints (static loop bounds),
# anything else becomes an instruction

def iadd(bld, a, b):
    """a + b."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    a, b = (i64(x) if isinstance(x, int) else x for x in (a, b))
    return bld.add(a, b, flags=INT_FLAGS)


def imul(bld, a, k: int):
    """a * k."""
    return a * k if isinstance(a, int) else bld.mul(a, i64(k), flags=INT_FLAGS)


def idiv(bld, a, k: int):
    """a // k (a >= 0)."""
    return a // k if isinstance(a, int) else bld.udiv(a, i64(k))


def isub(bld, a, b):
    """a - b (a >= b)."""
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    a, b = (i64(x) if isinstance(x, int) else x for x in (a, b))
    return bld.sub(a, b, flags=INT_FLAGS)


def linearize(bld: ll.IRBuilder, dims, shape) -> ll.Value:
    """The C-order linear index of dims in shape (Horner form, constants folded)."""
    linear = i64(0)
    for d, size in zip(dims, shape):
        if size != 1:
            linear = _add(bld, _mul(bld, linear, size), d)
    return linear


def delinearize(bld: ll.IRBuilder, linear, shape) -> list:
    """The multi-index of a C-order linear index in shape."""
    dims = []
    for k, size in enumerate(shape):
        if size == 1:
            dims.append(i64(0))
            continue
        inner = math.prod(shape[k + 1:])
        q = linear if inner == 1 else bld.udiv(linear, i64(inner))
        outermost = all(s == 1 for s in shape[:k])
        dims.append(q if outermost else bld.urem(q, i64(size)))
    return dims


def _mul(bld, a, size: int):
    if isinstance(a, ll.Constant) and a.constant == 0:
        return a
    return bld.mul(a, i64(size), flags=INT_FLAGS)


def _add(bld, a, b):
    if isinstance(a, ll.Constant) and a.constant == 0:
        return b
    if isinstance(b, ll.Constant) and b.constant == 0:
        return a
    return bld.add(a, b, flags=INT_FLAGS)


def declare(module: ll.Module, name: str, ret: ll.Type, args) -> ll.Function:
    """The function `name` of module, declared with the given type on first use."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ll.Function(module, ll.FunctionType(ret, list(args)), name)


def intrinsic(bld: ll.IRBuilder, name: str, *args, ret=None) -> ll.Value:
    """Calls an overloaded LLVM intrinsic on the type of its first argument: llvm.maximum.f32."""
    ty = args[0].type
    suffix = {"float": "f32", "double": "f64"}.get(str(ty), str(ty))
    fn = declare(bld.module, f"{name}.{suffix}", ret or ty, [a.type for a in args])
    return bld.call(fn, list(args))


# ---- fork/join over a task range -------------------------------------------------------

THREADS_OFFSET = 8      # the runtime writes the thread count (an i64) here in the workspace
POOL_OFFSET = 16        # ... and the address of runtime.pool's gj_pool_run (0: run inline)
MAX_THREADS = 64
TASK_TYPE = ll.FunctionType(ll.VoidType(), [PTR, I64])     # void task(ptr context, i64 t)
_POOL_TYPE = ll.FunctionType(ll.VoidType(), [TASK_TYPE.as_pointer(), PTR, I64, I64])


def parallel_for(bld: ll.IRBuilder, task: ll.Function, context, count, header):
    """Calls task(context, t) for every t in [0, count), on up to the header's thread count.

    header is the workspace header: the kernel hands the tasks to the process's pool
    (runtime.pool: the calling thread takes tasks too, and returns when all have run), or,
    when the runtime wrote no pool address (one thread), runs them in order itself. What a
    task computes must not depend on which thread runs it, so results do not depend on the
    thread count.
    """
    fn = _parallel_for_function(bld.module)
    bld.call(fn, [task, context, count, header])


def on_one_thread(bld: ll.IRBuilder, header) -> ll.Value:
    """An i1: whether the workspace header says no pool (tasks would run inline, in order)."""
    pool = bld.load(bld.gep(header, [i64(POOL_OFFSET)], source_etype=I8), typ=PTR)
    return bld.icmp_unsigned("==", pool, ll.Constant(PTR, None))


def _parallel_for_function(module: ll.Module) -> ll.Function:
    existing = module.globals.get("gj.parallel_for")
    if existing is not None:
        return existing
    fnty = ll.FunctionType(ll.VoidType(), [TASK_TYPE.as_pointer(), PTR, I64, PTR])
    fn = mark_glue(ll.Function(module, fnty, "gj.parallel_for"))
    fn.linkage = "internal"
    task, context, count, header = fn.args
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    threads = bld.load(bld.gep(header, [i64(THREADS_OFFSET)], source_etype=I8), typ=I64)
    pool_type = _POOL_TYPE.as_pointer()
    pool = bld.load(bld.gep(header, [i64(POOL_OFFSET)], source_etype=I8), typ=pool_type)
    with bld.if_else(bld.icmp_unsigned("!=", pool, ll.Constant(pool_type, None))) as (on_pool,
                                                                                     inline):
        with on_pool:
            bld.call(pool, [task, context, count, threads])
        with inline:
            with for_range(bld, count, "task") as t:
                bld.call(task, [context, t])
    bld.ret_void()
    return fn
