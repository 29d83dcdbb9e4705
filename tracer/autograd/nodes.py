"""The autograd graph: grad_fn nodes, AccumulateGrad, saved-tensor version checks.

A node is one recorded user-facing op (PyTorch's `grad_fn`). It does not compute
anything itself: the forward values live in the lazy Expr graph, and a node only remembers
which Exprs went in (`input_exprs`), which came out (`output_exprs`) and where each input's
gradient goes next (`next_functions`, as in PyTorch). The engine (engine.py) asks each node
to emit its vector-Jacobian product into one IR Builder (`emit_vjp`).

Every node class is named as PyTorch names it (`MulBackward0`, `AccumulateGrad`,
`MyFunctionBackward`), so `type(t.grad_fn).__name__` matches PyTorch; `node_class(name)`
makes (and caches) one subclass per name.
"""
from __future__ import annotations

import re
import weakref

from tracer.autograd.graphviz import to_dot
from tracer import storage as _storage_module
from tracer.tensor import Tensor

SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")
INPLACE_HINT = ("Hint: enable anomaly detection to find the operation that failed to compute "
                "its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")
TENSOR_TYPE_NAMES = {"f32": "torch.FloatTensor", "f64": "torch.DoubleTensor",
                     "i32": "torch.IntTensor", "i64": "torch.LongTensor",
                     "bool": "torch.BoolTensor"}


class Node:
    """A node of the autograd graph (a grad_fn). See the module docstring."""
    _name = "Node"
    given_fn = None        # the Function of a jitted call's node (recording.record_call)
    template = None        # the op_memo Template its ops were replayed from (node_walk.py)
    invalid_view = None    # PyTorch's error for reading this view's grad_fn (view_refusals)

    def __init__(self, inputs, outputs, loc: str | None = None):
        """inputs: (Expr, edge) pairs, edge = (node, output_nr) or None; outputs: Exprs."""
        if inputs:
            exprs, edges = zip(*inputs)
            self._setup(list(exprs), list(edges), list(outputs), loc)
        else:
            self._setup([], [], list(outputs), loc)

    def _setup(self, input_exprs: list, edges: list, output_exprs: list, loc: str | None):
        """__init__ on lists made by the caller (recording.attach_node: every recorded op)."""
        self.input_exprs, self.edges = input_exprs, edges
        self.output_exprs = output_exprs
        self.saved: list[SavedTensor] = []
        self.freed = False
        self.loc = loc
        self.retained: dict[int, weakref.ref] = {}     # output_nr -> tensor (retain_grad)
        self.hooks: dict[int, list] = {}               # output_nr -> tensor hooks
        self.metadata: dict = {}

    def name(self) -> str:
        return self._name

    def to_dot(self, params: dict | None = None) -> str:
        """The graph from this node back to the leaves, as Graphviz DOT (torchviz's
        make_dot); params maps names to leaf Tensors to label them."""
        return to_dot(self, params)

    @property
    def next_functions(self) -> tuple:
        return tuple(e if e is not None else (None, 0) for e in self.edges)

    @property
    def num_outputs(self) -> int:
        return len(self.output_exprs)

    # saved values without a version check (PyTorch's wrapped numbers, an operand kept only
    # for another operand's gradient): they still make a second backward an error
    saves_unchecked = False

    def has_saved(self) -> bool:
        return bool(self.saved) or self.saves_unchecked

    def check_saved(self):
        """Raises PyTorch's errors for a freed graph or an in-place-modified saved tensor."""
        if self.freed and self.has_saved():
            raise RuntimeError(SECOND_BACKWARD)
        for s in self.saved:
            s.check()

    def release(self):
        """After a backward without retain_graph: the saved values count as freed."""
        self.freed = True

    def emit_vjp(self, em, out_cts: list, wanted: list) -> list:
        """Emits the input cotangents (Values or None) for the output cotangents out_cts.

        wanted[i] says whether input i's cotangent is needed at all.
        """
        raise NotImplementedError(f"{self.name()} cannot be differentiated")

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


_NODE_CLASSES: dict[tuple, type] = {}


def node_class(name: str, base: type) -> type:
    """The Node subclass called `name` (cached), so type(grad_fn).__name__ is PyTorch's."""
    key = (name, base)
    cls = _NODE_CLASSES.get(key)
    if cls is None:
        cls = type(name, (base,), {"_name": name, "__module__": "torch.autograd.graph"})
        _NODE_CLASSES[key] = cls
    return cls


class AccumulateGrad(Node):
    """The sink of a leaf Tensor that requires grad: its gradient lands in `.grad`."""
    _name = "AccumulateGrad"

    def __init__(self, tensor: Tensor):
        super().__init__([], [])
        # NOTE: a strong reference, as PyTorch's: a leaf built inline, as in
        # (gj.tensor(..., requires_grad=True) * x).sum(), lives as long as the graph
        self.variable = tensor


def accumulate_node(t: Tensor) -> AccumulateGrad:
    """The one AccumulateGrad of a leaf Tensor (made on first use, as in PyTorch)."""
    node = t.__dict__.get("_accumulate")
    if node is None:
        node = AccumulateGrad(t)
        t._accumulate = node
    return node


def edge_of(t: Tensor):
    """Where a gradient for t goes: its grad_fn output, its AccumulateGrad, or None."""
    if t._grad_fn is not None:
        return (t._grad_fn, t._output_nr)
    if t._requires_grad:
        return (accumulate_node(t), 0)
    return None


class SavedTensor:
    """What a node saved of one tensor, for PyTorch's in-place modification check.

    PyTorch's message names the tensor's type and shape, its *current* grad_fn (for a saved
    input) or the saving node (for a saved output), and the versions. gradjit adds where
    the saving op was recorded, which PyTorch cannot say without anomaly mode, as a note on
    the exception (shown in the traceback; str(error) stays PyTorch's exact text).
    """

    __slots__ = ("storage", "version", "type", "_node", "output_nr", "tensor",
                 "grad_fn_at_save", "nr_at_save")

    def __init__(self, tensor: Tensor, node: Node, output_nr: int | None):
        self.storage = storage = tensor._storage
        if storage.unsettled:          # tensor may turn out a copy with a counter of its own
            _storage_module.saved_unsettled(tensor, self)    # (views._settle retargets)
        self.version = storage.version
        self.type = tensor._expr.value.type
        # the node owns this entry (no cycle) and is alive when it checks it: its name and
        # location are read from it then (NOTE: not copied here, on every recorded op)
        self._node = weakref.ref(node)
        self.output_nr = output_nr            # set when the node saved its own output
        # a saved input's current grad_fn is reported, as PyTorch does; keep it reachable
        self.tensor = weakref.ref(tensor) if output_nr is None else None
        self.grad_fn_at_save = tensor._grad_fn if output_nr is None else None
        self.nr_at_save = tensor._output_nr

    def retarget(self, tensor: Tensor):
        """An in-place op's own output is saved against the tensor it overwrote."""
        self.storage = tensor._storage
        self.version = tensor._storage.version

    def check(self):
        current = self.storage.version
        if current == self.version:
            return
        error = RuntimeError(self.message(current))
        node = self._node()
        if node is not None and node.loc:
            error.add_note(f"gradjit: the modified tensor was saved for {node.name()} "
                           f"by the op at {node.loc}")
        raise error

    def _producer(self):
        if self.output_nr is not None:
            return self._node(), self.output_nr
        t = self.tensor() if self.tensor is not None else None
        if t is not None:
            return t._grad_fn, t._output_nr
        return self.grad_fn_at_save, self.nr_at_save

    def _empty_view(self) -> bool:
        """Whether the saved tensor is an empty view (views.py: not a member of its base's
        storage, so its node is not re-derived as AsStrided when the counter moves)."""
        t = self.tensor() if self.tensor is not None else None
        return t is not None and getattr(t, "_empty_view_of", None) is not None

    def message(self, current: int) -> str:
        shape = "[" + ", ".join(map(str, self.type.shape)) + "]"
        what = f"[{TENSOR_TYPE_NAMES[self.type.dtype]} {shape}]"
        producer, nr = self._producer()
        if producer is not None:
            short = re.sub(r"Backward\d*$", "", producer.name())
            if self._empty_view():         # PyTorch regenerates a changed view's node
                short, nr = "AsStrided", 0
            what += f", which is output {nr} of {short},"
        return ("one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: {what} is at version {current}; expected version "
                f"{self.version} instead. {INPLACE_HINT}")
