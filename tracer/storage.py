"""A Tensor's Storage (what the tensors sharing one value have in common: tracer/autograd/
views.py) and the attribute that makes it on first use (tracer/tensor.py's Tensor._storage)."""
from __future__ import annotations


class Storage:
    """What the tensors sharing one value have in common (see tracer/autograd/views.py): the
    version counter and, once shared, the members and the root value they window on."""
    # class attributes, not an __init__: every result tensor makes one, most never change it
    version = 0
    members = None                 # WeakSet of the sharing Tensors, once there are several
    root = None                    # weakref to the tensor whose value the members window on
    root_expr = None
    host = None                    # the ndarray shared with NumPy (numpy(), from_numpy)
    unsettled = False              # holds a reshape of a view that may be a copy


# tracer/autograd/views.py's _note_saved(tensor, entry): a tensor of an unsettled storage
# was saved for backward (nodes.SavedTensor); if it turns out a copy, the entry follows the
# copy's own counter
saved_unsettled = None


class SharedCounter(Storage):
    """The Storage of a view with no elements: it shares none of its base's values, only
    its version counter (PyTorch's views share one), so a saved empty view whose base
    changes in place makes backward refuse, as PyTorch's does."""

    def __init__(self, of: Storage):
        self._of = of

    @property
    def version(self) -> int:
        return self._of.version

    @version.setter
    def version(self, value: int):
        self._of.version = value


class StorageOnFirstUse:
    """Tensor._storage: a tensor's Storage, made when first asked for and then kept in the
    tensor's __dict__ (which a plain attribute read finds before this non-data descriptor).
    Most results are read by the next op and dropped without anyone asking for their version
    counter or views: not making one saves ~0.2 us per result (a followed step makes 30)."""

    def __get__(self, t, owner=None):
        if t is None:
            return self
        st = t.__dict__["_storage"] = Storage()
        return st
