"""Tensor: the user's handle on an Expr, shared by the functional and imperative fronts.

Operations on Tensors never compute anything by themselves: they record IR ops (see
tracer/expr.py). Reading a value (`.numpy()`, `.item()`, `print`) realises it: the pending
graph behind it is cut into an ir.Function, compiled (cached by structure) and run.
Under a functional trace (`jit`, `grad`, ...) the graph reaches symbolic parameters, which
cannot be realised: asking for their data raises TracerError naming the user's line.

The class body holds a Tensor's own state and what needs nothing but it; the rest of the
surface (operators, `.sum()`, the in-place `add_`, `+=`, `x[i] = v`, `new_zeros`, and
`backward`, `register_hook`, `detach`, `.data`, which need the autograd graph) is one table
in tracer/surface.py, attached once when the tracer package is imported.
The autograd fields are PyTorch's: `requires_grad` (settable on leaves), `is_leaf`,
`grad` (warns when read on a non-leaf), `grad_fn` (a node of tracer/autograd/nodes.py),
`_version` (bumped by in-place ops). A Tensor, its views (`x[0]`, `x.t()`, ...) and its
`detach()`ed aliases share a `Storage`: one version counter, and in-place changes through
one show in the others (tracer/autograd/views.py). Printing follows PyTorch's format
(tracer/tensor_str.py).
"""
from __future__ import annotations

import warnings
import weakref

import numpy as np

from ir.core import DTYPES
from runtime.executable import read_only_owner
from tracer import device as devices
from tracer import bounded, realize_plans
from tracer.dtypes import DType, Size, default_float, dtype_from_ir
from tracer.errors import TracerError, user_frame_path
from tracer.expr import Expr, apply_op, data_expr
from tracer.pending_expr import LOCK as pending_lock, PendingExpr, bare_constant, settle
from tracer.pending_updates import (PENDING, note_inplace,  # noqa: F401  (re-exported)
                                    updated_tensors)
from tracer.storage import Storage, StorageOnFirstUse  # noqa: F401  (Storage: views.py's)
from tracer.run_programs import run_function
from tracer.tensor_str import format_tensor

NON_LEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more information.")
NON_LEAF_FLAG = (
    "you can only change requires_grad flags of leaf variables. If you want to use a computed "
    "variable in a subgraph that doesn't require differentiation use "
    "var_no_grad = var.detach().")


def alias_expr(e: Expr) -> Expr:
    """A distinct Expr with e's value (same op result, same data): detach() gives one, so
    the autograd graph can tell `x` from `x.detach()` even inside one op. Under a
    functional trace (a symbolic value) it is a stop_gradient op, so grad/jvp see a
    constant, as jax.lax.stop_gradient."""
    if e.symbolic:
        return apply_op("stop_gradient", (e,), None)[0]
    return Expr(e.value, e.op, e.args, e.data, e.symbolic)


# set by tracer/surface.install: views.share(base, t, identity), for torch.Tensor(tensor)
share_storage: list = []


class Tensor:
    # the autograd fields' values for a new tensor, as class attributes: an instance stores
    # only what differs, so making a result tensor (of every jit call) costs two stores
    _requires_grad = False         # leaves only; a non-leaf requires grad via its grad_fn
    _grad = None
    _grad_fn = None
    _output_nr = 0
    _retains_grad = False
    _member = None                 # how this tensor sits in a shared storage (views.py)
    _storage = StorageOnFirstUse()

    def __init__(self, expr=None, *args, **kwargs):
        host = None
        if type(expr) is not Expr and type(expr) is not PendingExpr or args or kwargs:
            if isinstance(expr, Tensor) and not args and not kwargs:
                return self._alias_of(expr)
            host = expr if _shareable(expr, default_float()) and not args else None
            expr = legacy_expr((expr, *args) if expr is not None or args else (), kwargs,
                               default_float()) if host is None else data_expr(host)
        self._expr = expr
        if host is not None:
            self._storage.host = host

    def _alias_of(self, base: "Tensor"):          # (__init__: the legacy torch.Tensor(...))
        """torch.Tensor(t): the same data (writes through either are seen by both)."""
        if base.requires_grad:
            raise TypeError("gradjit does not implement torch.Tensor(t) for a t that requires "
                            "grad: use t.view_as(t)")
        Tensor.__init__(self, alias_expr(base._expr))
        share_storage[0](base, self, True)

    # ---- autograd fields (PyTorch's) ----

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self._grad_fn is not None

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if self._grad_fn is not None:
            if not value:
                raise RuntimeError(NON_LEAF_FLAG)
            return
        if value and not self.dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        expr = self._expr
        if value and expr.data is None and not expr.symbolic:
            # a new leaf (x.clone().requires_grad_()) is a boundary of the autograd graph:
            # computed now, so backward programs take it as an input, not as its recipe
            realize([expr])
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        fn = self._grad_fn
        if fn is not None and fn.invalid_view is not None:
            raise RuntimeError(fn.invalid_view)     # (as grad_fn below)
        return fn is None

    @property
    def grad_fn(self):
        fn = self._grad_fn
        if fn is not None and fn.invalid_view is not None:
            raise RuntimeError(fn.invalid_view)     # (tracer/autograd/view_refusals.py)
        return fn

    @property
    def grad(self):
        if self._grad_fn is not None and not self._retains_grad and self._grad is None:
            warnings.warn(NON_LEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad "
                                f"of type {type(value).__name__}")
            if value.dtype is not self.dtype:
                raise RuntimeError("assigned grad has data of a different type")
            if value.shape != self.shape:
                raise RuntimeError("assigned grad has data of a different size")
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def retain_grad(self):
        """Asks backward() to fill in .grad of this non-leaf Tensor too."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_fn is None:
            return
        self._retains_grad = True
        self._grad_fn.retained[self._output_nr] = weakref.ref(self)

    @property
    def output_nr(self) -> int:
        return self._output_nr

    @property
    def _version(self) -> int:
        return self._storage.version

    def detach_(self) -> "Tensor":
        self._grad_fn = None
        self._output_nr = 0
        self._requires_grad = False
        return self

    # ---- static facts, known without computing anything ----

    @property
    def shape(self):
        return Size(self._expr.type.shape)

    @property
    def dtype(self) -> DType:
        return dtype_from_ir(self._expr.type.dtype)

    @property
    def ndim(self) -> int:
        return len(self._expr.value.type.shape)      # (read per recorded op: kept direct)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return self._expr.type.size

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def element_size(self) -> int:
        return self.dtype.numpy.itemsize

    # gradjit runs on the CPU only; these keep device-agnostic PyTorch code working
    device = property(lambda self: devices.CPU)
    is_cuda = is_xpu = is_mps = is_meta = is_sparse = is_quantized = False

    def cpu(self, memory_format=None) -> "Tensor":
        return self

    def cuda(self, device=None, non_blocking=False, memory_format=None) -> "Tensor":
        raise AssertionError(devices.CUDA_ERROR)

    def contiguous(self, memory_format=None) -> "Tensor":
        return self

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- reading data ----

    def _realize(self) -> np.ndarray:
        """The value as a NumPy array (read-only view of the realised buffer)."""
        return realize([self._expr])[0]

    def __array__(self, dtype=None, copy=None):
        self._require_concrete("np.asarray()")
        arr = self._realize()
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            return arr.astype(dtype)
        # NOTE: a read-only view (JAX's) of memory nobody writes (runtime.executable's
        # read_only_owner): a 1e6 copy was ~8 ms of a cold first call; else a copy as before
        return arr.copy() if copy or not read_only_owner(arr) else arr.view()

    def _require_concrete(self, what: str):
        if self._expr.symbolic:
            raise TracerError(
                f"{what} needs the concrete value of a traced tensor {self._expr.type} "
                f"at {user_frame_path()}. Inside jit/grad, Python control flow cannot depend "
                "on traced data: use gj.cond(pred, true_fn, false_fn, *operands) for branches, "
                "gj.fori_loop(lo, hi, body, init) or gj.scan(f, init, xs) for loops with a "
                "known trip count, gj.while_loop(cond_fn, body_fn, init) otherwise, or "
                "gj.where(pred, x, y) for elementwise choices.")

    def __bool__(self) -> bool:
        self._require_concrete("bool()")
        if self.numel() == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        if self.numel() != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._realize().reshape(()))

    def item(self):
        e = self._expr                   # (read every step of a loop: no helper calls)
        if e.symbolic:
            self._require_concrete(".item()")
        if e.value.type.shape and self.numel() != 1:
            raise RuntimeError(
                f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        data = e.data
        return (data if data is not None else realize([e])[0]).item()

    def __float__(self) -> float:
        self._require_concrete("float()")
        return float(self._scalar())

    def __int__(self) -> int:
        self._require_concrete("int()")
        return int(self._scalar())

    def _scalar(self):
        if self.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __index__(self) -> int:
        self._require_concrete("using a tensor as an index")
        if self._expr.type.dtype not in ("i32", "i64", "bool") or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def tolist(self):
        self._require_concrete(".tolist()")
        return self._realize().tolist()

    def _numpy(self) -> np.ndarray:
        """A copy of the value as a NumPy array, with no autograd checks."""
        self._require_concrete(".numpy()")
        return self._realize().copy()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The value as an ndarray. For a leaf that does not require grad and shares its
        storage with no other tensor, the array and the tensor share memory, as in PyTorch:
        `t.add_(1)` shows in the array and `a[0] = 5` in the tensor. Otherwise, as for a
        view, `detach()` or a tensor with a grad_fn, a copy (**differs:** PyTorch's shares
        memory, so a write to it is not seen by the tensor here: docs/compat.md). gradjit's
        ops are lazy, so an op on the tensor whose result has not been read yet
        when the array is written to sees the new values (PyTorch's eager op saw the old).
        NOTE: computing such ops at once instead made a DataLoader over a from_numpy dataset
        7x slower (292 s against 40 s an epoch of 512 samples: one compile per sample
        index), so it is not done."""
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        st = self._storage
        if st.host is not None and self._expr.data is st.host:
            return st.host
        if self._grad_fn is not None or st.members is not None or self._expr.symbolic:
            return self._numpy()
        st.host = np.array(self._realize(), copy=True)    # writable, owned by the pair
        self._expr = data_expr(st.host)
        return st.host

    def _sync_host(self):
        """After an in-place op on this tensor or a view of it: the new value into the
        ndarray shared with NumPy (numpy(), from_numpy), computed now as PyTorch would. The
        sharing then ends if the tensor joined a graph or shares its storage with views."""
        st = self._storage
        owner = st.root() if st.members is not None and st.root is not None else self
        if owner is None or owner._expr.symbolic:
            st.host = None
            return
        np.copyto(st.host, owner._realize())
        if owner._grad_fn is not None or st.members is not None:
            st.host = None
            return
        self._expr = data_expr(st.host)

    def __repr__(self) -> str:
        if self._expr.symbolic:
            return f"Traced<{self._expr.type}>"
        fn = self._grad_fn
        name = None if fn is None else "Invalid" if fn.invalid_view else type(fn).__name__
        return format_tensor(self._realize(), self.dtype, name, self.requires_grad)

    def __format__(self, spec: str) -> str:
        if spec:
            self._require_concrete("format()")
        if self.ndim == 0 and not self._expr.symbolic:
            return self.item().__format__(spec)
        return object.__format__(self, spec) if spec else repr(self)

    def __deepcopy__(self, memo):
        if self._grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol at the moment.  If you were "
                               "attempting to deepcopy a module, this may be because of a "
                               "torch.nn.utils.weight_norm usage, see "
                               "https://github.com/pytorch/pytorch/pull/103001")
        new = type(self).__new__(type(self))
        Tensor.__init__(new, self._expr if self._expr.symbolic else
                        data_expr(np.array(self._realize())))
        new.__dict__.update({k: v for k, v in self.__dict__.items()
                             if k not in ("_expr", "_storage", "_grad", "_accumulate",
                                          "_member")})
        new._grad = None if self._grad is None else self._grad.__deepcopy__(memo)
        memo[id(self)] = new
        return new

    def __hash__(self) -> int:
        return id(self)


def _shareable(data, dtype: str) -> bool:
    """torch.Tensor(ndarray) shares the array's memory when it has the default dtype."""
    return (isinstance(data, np.ndarray) and data.dtype == DTYPES[dtype]
            and data.flags.c_contiguous and data.flags.aligned and data.dtype.isnative)


def legacy_expr(args: tuple, kwargs: dict, dtype: str) -> Expr:
    """The data Expr of the legacy constructors `torch.Tensor(data)`, `torch.Tensor(2, 3)`,
    `torch.Tensor()` and the typed ones (`torch.LongTensor`, ...): data converted to dtype,
    or a tensor of that shape (zeros: PyTorch leaves it uninitialised)."""
    for key, value in kwargs.items():
        if key != "device":
            raise TypeError(f"new() got an unexpected keyword argument '{key}'")
        devices.check(value)
    if len(args) == 1 and isinstance(args[0], Size):     # torch.Tensor(x.shape)
        args = tuple(args[0])
    if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
        arr = np.zeros(args if args else (0,))
    elif len(args) == 1 and isinstance(args[0], Tensor):
        raise TypeError("gradjit does not implement torch.Tensor(tensor) (an alias of the same "
                        "data): use tensor.detach(), or torch.tensor(values) for a copy")
    elif len(args) == 1 and isinstance(args[0], str):
        raise TypeError("new(): invalid data type 'str'")
    elif len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray)):
        arr = np.array(args[0])
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            kind = {"U": "str", "S": "bytes"}.get(arr.dtype.kind, "object")
            raise TypeError(f"new(): invalid data type '{kind}'" if arr.dtype != object else
                            "new(): expected a sequence of equal length lists of numbers")
    elif len(args) == 1:
        raise TypeError(f"new(): data must be a sequence (got {type(args[0]).__name__})")
    else:
        raise TypeError("new() received an invalid combination of arguments - expected "
                        "(data) or (*size)")
    arr = arr.astype(DTYPES[dtype])
    arr.flags.writeable = False
    return data_expr(arr)


step_capture = None     # tracer/step_capture.py (it sets this on import: it imports us)

def updated_pending(pending: list[Expr]) -> list[Expr]:
    """The pending values of tensors updated in place (note_inplace), not yet in pending.

    Computing them with every realisation keeps a loop of updates (`w -= lr * grad`, then
    `loss.item()`) from stacking each step's update onto the last: every read would
    otherwise compile a program holding the whole history of w. A bare constant (`w.grad.
    zero_()`) has no history: it stays pending (and listed), so the next program that
    reads it (the next backward adding to the zeroed grad) folds it instead of reading an
    array of zeros written out by the read (two_layer_net's `.item()` every 10th step)."""
    seen = set(map(id, pending))        # (no comprehension: a read per step calls this)
    out = []
    updated = PENDING.updated
    for key, ref in list(updated.items()):
        t = ref()
        e = t._expr if t is not None else None
        if e is None or e.data is not None or e.symbolic:
            del updated[key]
        elif id(e) not in seen and not bare_constant(e):
            seen.add(id(e))
            out.append(e)
    return out


def realize(exprs: list[Expr]) -> list[np.ndarray]:
    """Computes the given Exprs (compiling their pending graph) and stores their data.

    Pending values of the autograd graph met on the way are computed and kept too: a
    backward() after `print(loss)` then starts from them instead of redoing the forward.
    So are the pending new values of tensors updated in place (see note_inplace)."""
    if len(exprs) == 1:                              # (item(): no comprehension)
        if exprs[0].data is not None:
            return [exprs[0].data]
    elif not [e for e in exprs if e.data is None]:
        return [e.data for e in exprs]
    with pending_lock:     # one thread computes at a time (the lock's note)
        return _realize(exprs)


def _realize(exprs: list[Expr]) -> list[np.ndarray]:
    if len(exprs) == 1:
        pending = [] if exprs[0].data is not None else list(exprs)
    else:
        pending = [e for e in exprs if e.data is None]
    if not pending:                                  # computed by another thread meanwhile
        return [e.data for e in exprs]
    updated = updated_pending if PENDING.updated else None
    fast = step_capture.fast_read(pending, updated) if step_capture.ENABLED else None
    if fast is not None:                             # the read of a captured step
        step_capture.end_read(None, None)
        for e, out in zip(*fast):                    # (its outputs are read-only)
            settle(e, out)
        return [e.data for e in exprs]
    done = realize_plans.read(pending, updated, run_function)
    if step_capture.ENABLED:
        step_capture.end_read(realize_plans.last_walk(done), realize_plans.plans())
    if done is None:                                 # not keyable: the separate passes
        if bounded.too_large(pending):               # a long unrolled loop: op by op
            bounded.compute_in_pieces(pending, run_function)
            pending = [e for e in exprs if e.data is None]
        if pending:
            pending += realize_plans.recorded_pending(pending)
            if PENDING.updated:
                pending += updated_pending(pending)
            done = pending, realize_plans.compute(pending, run_function)
    if done is not None:
        for e, out in zip(*done):
            out.flags.writeable = False
            settle(e, out)
    return [e.data for e in exprs]


def tensor_from_array(array, dtype: str | None = None) -> Tensor:
    """A realised Tensor holding a copy of array (optionally converted to an IR dtype)."""
    arr = np.array(array, copy=True)
    if dtype is not None:
        arr = arr.astype(DTYPES[dtype])
    arr.flags.writeable = False
    return Tensor(data_expr(arr))
