"""The PyTorch class name of an op's backward node (SumBackward0, PowBackward2, ...): PyTorch
numbers some nodes by the overload called, which the arguments tell."""
from __future__ import annotations

import numbers
import re

from tracer.tensor import Tensor

__all__ = ["PLAIN_NAMES", "is_number", "node_name"]


# PyTorch numbers some backward nodes by overload: sum() is SumBackward0, sum(dim) SumBackward1
def _has_dim(args, kwargs) -> bool:
    dim = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis"))
    return isinstance(dim, (int, tuple, list)) and not isinstance(dim, bool)


def is_number(x) -> bool:
    t = type(x)
    if t is float or t is int or t is bool:
        return True
    return not isinstance(x, Tensor) and isinstance(x, numbers.Number)   # (abc check: slow)


_OVERLOADS = {
    "Sum": lambda a, k: "SumBackward1" if _has_dim(a, k) else "SumBackward0",
    "Mean": lambda a, k: "MeanBackward1" if _has_dim(a, k) else "MeanBackward0",
    "Prod": lambda a, k: "ProdBackward1" if _has_dim(a, k) else "ProdBackward0",
    "Max": lambda a, k: "MaxBackward0" if _has_dim(a, k) else "MaxBackward1",
    "Min": lambda a, k: "MinBackward0" if _has_dim(a, k) else "MinBackward1",
    "Sub": lambda a, k: "RsubBackward1" if a and is_number(a[0]) else "SubBackward0",
    "Pow": lambda a, k: ("PowBackward2" if a and is_number(a[0]) else
                         "PowBackward0" if len(a) > 1 and is_number(a[1]) else "PowBackward1"),
    "Rsub": lambda a, k: "RsubBackward1" if len(a) > 1 and is_number(a[1]) else "RsubBackward0",
    "Scatter": lambda a, k: "ScatterBackward1" if "value" in k or len(a) > 4 and a[4] is not None
    or len(a) > 3 and not isinstance(a[3], Tensor) else "ScatterBackward0",
    "IndexFill": lambda a, k: "IndexFillBackward1" if isinstance(
        a[3] if len(a) > 3 else k.get("value"), Tensor) else "IndexFillBackward0",
    "Clamp": lambda a, k: "ClampBackward0" if any(
        isinstance(x, Tensor) for x in list(a[1:]) + list(k.values())) else "ClampBackward1",
    "CopySlices": lambda a, k: "IndexPutBackward0" if _advanced_key(a[1]) else "CopySlices",
}


def _advanced_key(key) -> bool:
    """x[key] = v is PyTorch's index_put_ on x itself (IndexPutBackward0) for a key with a
    list or a Tensor of one or more dims (a mask too) and otherwise only full slices and
    `...`; any other entry (an int, a 0-d Tensor, a part slice, None) takes a view of x
    first, and the write into that view is CopySlices."""
    advanced = False
    for e in key if type(key) is tuple else (key,):
        if type(e) is list or isinstance(e, Tensor) and e._expr.type.shape:
            advanced = True
        elif e is not Ellipsis and not (type(e) is slice and e == slice(None)):
            return False
    return advanced


PLAIN_NAMES: dict[str, str] = {}     # op name -> node name, for names without overloads


def node_name(name: str, args, kwargs) -> str:
    """The PyTorch class name of the backward node of op `name` called with these args."""
    plain = PLAIN_NAMES.get(name)
    if plain is not None:
        return plain
    if name not in _OVERLOADS:
        plain = PLAIN_NAMES[name] = _node_name(name, args, kwargs)
        return plain
    return _node_name(name, args, kwargs)


def _node_name(name: str, args, kwargs) -> str:
    # NOTE: an overloaded op's rule first: its name is never a node name, and the regex
    # cost ~0.6 us on every call of one (two_layer_net's sub, pow, clamp, sum each step)
    rule = _OVERLOADS.get(name)
    if rule is not None:
        return rule(args, kwargs)
    if re.search(r"Backward\d*$", name) or name in ("CopySlices", "CopyBackwards"):
        return name
    return f"{name}Backward0"
