"""GRADJIT_BOUNDS_CHECK covers the emitters that address memory by hand (codegen.bounds):
control flow's copies and scan slices, the sort's scratch (radix and merge), the nest's
accumulator lanes and wide sums' scratch, the LAPACK kernels. Each test spoils one emitter
on purpose (a wrong offset, a too-short buffer, a loop bound or index one too far) and shows
BoundsError raised (or the address refused at compile time) with the inputs untouched; the
unspoiled kernel in bounds-check mode gives the plain kernel's bits, with checks emitted.
"""
import numpy as np
import pytest
from llvmlite import ir as ll

import runtime
from codegen import bounds, control, emit, extremum_lanes, lapack, nest, radix, sorting, summation
from codegen.buffers import Buffer, KernelContext
from codegen.emit import KernelSource
from codegen.loops import I32, PTR, i64
from tests.prim_samples import SAMPLES, T, make_fn, sample_args

NP = {"f32": np.float32, "f64": np.float64}


def _inputs(fn, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=p.type.shape).astype(NP[p.type.dtype]) for p in fn.params]


def _same(a, b):
    return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))


def _raises_untouched(fn, args):
    """fn compiled in bounds-check mode (with checks emitted) raises BoundsError on args,
    which it leaves as they were."""
    before = bounds.STATS["checked"]
    exe = runtime.build_executable(fn, bounds_check=True)
    assert bounds.STATS["checked"] > before
    guard = [a.copy() for a in args]
    with pytest.raises(runtime.BoundsError, match="out-of-bounds buffer"):
        exe(*args)
    assert _same(args, guard)


def _checked_equals_plain(fn, args):
    before = bounds.STATS["checked"]
    checked = runtime.build_executable(fn, bounds_check=True)(*args)
    assert bounds.STATS["checked"] > before
    assert _same(checked, runtime.build_executable(fn)(*args))


# ---- control flow -------------------------------------------------------------------------

def _copy_kernel(fn, src_size: int) -> KernelSource:
    """A kernel for fn (f32[4] -> f32[4]) copying its input, told the input has src_size."""
    module = ll.Module("copy")
    name = f"gj_copy_{src_size}"
    entry = ll.Function(module, ll.FunctionType(ll.VoidType(), [PTR, PTR]), name)
    ctx = KernelContext(entry, entry.args[1], bounds_check=True)
    bld = ctx.bld
    bld.store(ll.Constant(I32, 0), entry.args[1])
    ptrs = [bld.load(bld.gep(entry.args[0], [i64(k)], source_etype=PTR), typ=PTR) for k in (0, 1)]
    x, y = Buffer(ptrs[0], T("f32", (src_size,)), ctx), Buffer(ptrs[1], T("f32", (4,)), ctx)
    control.copy(bld, y, x)
    ctx.finish()
    return KernelSource(str(module), name, fn, list(fn.param_types), list(fn.result_types), 64)


def test_a_copy_from_a_too_short_buffer_is_not_made():
    fn = make_fn("copy", [T("f32", (4,))], lambda b, x: [b.neg(x)])
    x = np.arange(4, dtype=np.float32)
    exe = runtime.build_executable(fn, _copy_kernel(fn, 3), bounds_check=True)
    with pytest.raises(runtime.BoundsError, match="out-of-bounds buffer load"):
        exe(x)
    (out,) = runtime.build_executable(fn, _copy_kernel(fn, 4), bounds_check=True)(x)
    assert out.tolist() == x.tolist()


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_scan_slices_one_step_too_far_raise(dtype, monkeypatch):
    """Each step's xs and ys slices are span-checked: a step index one too many leaves the
    buffers on the last step, which is then not run."""
    case = SAMPLES["scan"].compiled[0]
    fn = case.build(dtype)
    args = sample_args(case, fn, np.random.default_rng(0))
    _checked_equals_plain(fn, args)
    slice_ptr = control._ScanChecks.slice_ptr

    def late(self, bld, buf, i, slice_bytes, code):
        return slice_ptr(self, bld, buf, bld.add(i, i64(1)), slice_bytes, code)
    monkeypatch.setattr(control._ScanChecks, "slice_ptr", late)
    _raises_untouched(fn, args)


def test_a_scan_carry_scratch_of_another_size_is_refused(monkeypatch):
    case = SAMPLES["scan"].compiled[0]
    fn = case.build("f32")
    aux_types = control.aux_types

    def long(op):
        return [T(t.dtype, (t.size + 1,)) for t in aux_types(op)]
    monkeypatch.setattr(emit, "aux_types", long)
    with pytest.raises(bounds.CheckError, match="scan carry"):
        runtime.build_executable(fn, bounds_check=True)


# ---- sort -----------------------------------------------------------------------------------

def _sort_fn(n: int, dtype: str):
    return make_fn("sort", [T(dtype, (3, n))],
                   lambda b, x: list(b.sort(x, axis=1, descending=False)))


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("how", ["short scratch", "digit", "offset"])
def test_a_spoiled_radix_sort_raises(how, dtype, monkeypatch):
    fn = _sort_fn(300, dtype)
    args = _inputs(fn)
    _checked_equals_plain(fn, args)
    if how == "short scratch":      # one counter too few
        monkeypatch.setattr(sorting, "scratch_elements", lambda n: 4 * n + 255)
    elif how == "digit":            # a counter index one too far
        digit = radix._digit
        monkeypatch.setattr(radix, "_digit",
                            lambda bld, key, byte: bld.add(digit(bld, key, byte), i64(1)))
    else:                           # every array access one element late
        at = radix._Scratch._at_offset
        monkeypatch.setattr(radix._Scratch, "_at_offset",
                            lambda self, off, i: at(self, off, self.bld.add(i, i64(1))))
    _raises_untouched(fn, args)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("how", ["short scratch", "index"])
def test_a_spoiled_merge_sort_raises(how, dtype, monkeypatch):
    fn = _sort_fn(13, dtype)
    args = _inputs(fn)
    _checked_equals_plain(fn, args)
    if how == "short scratch":      # the second row one pair short
        types = sorting.scratch_types
        monkeypatch.setattr(control, "sort_scratch_types",
                            lambda op: [T("i64", (types(op)[0].size - 2,))])
    else:                           # every store one pair late
        store = sorting._Rows.store
        monkeypatch.setattr(sorting._Rows, "store", lambda self, which, i, value, index: store(
            self, which, self.bld.add(i, i64(1)), value, index))
    _raises_untouched(fn, args)


# ---- nest accumulators ----------------------------------------------------------------------

def _lane_late(cls, name):
    lane = getattr(cls, name)
    return lambda self, bld, k: lane(self, bld, bld.add(k, i64(1)))


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("shape", [(5000,), (3, 40)])
def test_cascade_lanes_one_too_far_raise(shape, dtype, monkeypatch):
    """A sum's lanes (blocked cascade of a long row, or plain lanes) with the lane index
    one too far: the last lane leaves its array."""
    fn = make_fn("sum", [T(dtype, shape)], lambda b, x: [b.reduce_sum(x, axes=(len(shape) - 1,))])
    args = _inputs(fn)
    _checked_equals_plain(fn, args)
    monkeypatch.setattr(summation.Cascade, "lane", _lane_late(summation.Cascade, "lane"))
    _raises_untouched(fn, args)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_extremum_lanes_one_too_far_raise(dtype, monkeypatch):
    fn = make_fn("sum_max", [T(dtype, (3, 40))],
                 lambda b, x: [b.reduce_sum(x, axes=(1,)), b.reduce_max(x, axes=(1,))])
    args = _inputs(fn)
    _checked_equals_plain(fn, args)
    monkeypatch.setattr(extremum_lanes.ExtremumLanes, "_lane",
                        _lane_late(extremum_lanes.ExtremumLanes, "_lane"))
    _raises_untouched(fn, args)


def _wide_fn(dtype):
    """A sum over the outer axis of a tall matrix: a Wide sum with scratch (nest.py)."""
    return make_fn("wide", [T(dtype, (3000, 7))], lambda b, x: [b.reduce_sum(x, axes=(0,))])


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_wide_sum_outputs_one_too_far_are_not_written(dtype, monkeypatch):
    fn = _wide_fn(dtype)
    args = _inputs(fn)
    _checked_equals_plain(fn, args)
    call = nest.NestEmitter._wide_call
    monkeypatch.setattr(nest.NestEmitter, "_wide_call", lambda self, red, method, base: call(
        self, red, method, self.bld.add(base, i64(1))))
    _raises_untouched(fn, args)


@pytest.mark.parametrize("stack", [True, False])
def test_a_wide_scratch_part_outside_the_scratch_is_refused(stack, monkeypatch):
    fn = _wide_fn("f64")
    if not stack:
        monkeypatch.setattr(nest, "STACK_SCRATCH_BYTES", 0)
    _checked_equals_plain(fn, _inputs(fn))
    gep = bounds.CheckedBuilder.gep

    def late(self, ptr, indices, inbounds=False, name="", source_etype=None):
        if source_etype == summation.F64 and isinstance(indices[0], ll.Constant):
            indices = [i64(indices[0].constant + 1)]
        return gep(self, ptr, indices, inbounds, name, source_etype)
    monkeypatch.setattr(bounds.CheckedBuilder, "gep", late)
    with pytest.raises(bounds.CheckError, match="does not lie in its buffer"):
        runtime.build_executable(fn, bounds_check=True)


# ---- LAPACK ---------------------------------------------------------------------------------

def _linalg(name: str, dtype: str):
    case = SAMPLES[name].compiled[0]
    fn = case.build(dtype)
    return fn, sample_args(case, fn, np.random.default_rng(0))


LAPACK_OPS = ["cholesky", "triangular_solve", "lu", "qr", "eigh", "svd"]


# (cholesky neither transposes nor allocates: only its matrices can be spoiled)
LAPACK_CASES = [(how, name, dtype)
                for how in ("matrix offset", "transpose rows", "short malloc")
                for name in LAPACK_OPS
                for dtype in ("f32", "f64")
                if dtype in SAMPLES[name].compiled[0].dtypes
                and (how == "matrix offset" or name != "cholesky")]


@pytest.mark.parametrize("how, name, dtype", LAPACK_CASES)
def test_a_spoiled_lapack_kernel_raises(how, name, dtype, monkeypatch):
    fn, args = _linalg(name, dtype)
    _checked_equals_plain(fn, args)
    if how == "matrix offset":      # every matrix one element late
        at = lapack._Lapack.at
        monkeypatch.setattr(lapack._Lapack, "at", lambda self, value, index, per: self.bld.gep(
            at(self, value, index, per), [i64(1)], source_etype=self.k.buffer(value).elem))
    elif how == "transpose rows":   # a copy loop one row too long
        transpose = lapack._Lapack.transpose
        monkeypatch.setattr(lapack._Lapack, "transpose", lambda self, dst, src, rows, cols:
                            transpose(self, dst, src, rows + 1, cols))
    else:                           # scratch one element short
        malloc = lapack._Lapack.malloc
        monkeypatch.setattr(lapack._Lapack, "malloc", lambda self, count, size, elem=None:
                            malloc(self, count - 1, size, elem))
    _raises_untouched(fn, args)
