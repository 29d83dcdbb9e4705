"""What an optimizer step hands the program and takes back: the hyperparameters' 0-d
arrays (cached by value) and the assignment of a new value to a parameter or state tensor."""
from __future__ import annotations

import numpy as np

from ir.core import DTYPES

from tracer.autograd import views
from tracer.tensor import Tensor

__all__ = ["scalar_arrays", "renewed_scalars", "same_objects", "assign"]


# (dtype, hyperparameter values) -> their 0-d arrays: SGD's are the same every step
_SCALARS: dict = {}


def scalar_arrays(dtype: str, values: tuple) -> list[np.ndarray]:
    # floats by their bits (-0.0 is not 0.0, NaN finds itself)
    parts = []
    for v in values:
        t = type(v)
        if t is float:
            parts.append(v.hex())
        elif t is int or t is bool:
            parts.append((t, v))
        else:
            return [np.asarray(v).astype(DTYPES[dtype]) for v in values]
    key = (dtype, tuple(parts))
    hit = _SCALARS.get(key)
    if hit is None:
        if len(_SCALARS) >= 1024:             # Adam's bias corrections change every step
            _SCALARS.clear()
        hit = _SCALARS[key] = [np.asarray(v).astype(DTYPES[dtype]) for v in values]
        for a in hit:
            a.flags.writeable = False
    return hit


def renewed_scalars(dtype: str, values: tuple, old_values: tuple, old: list) -> list:
    """The 0-d arrays of values, reusing old's where the value is the same object as in
    old_values (Adam's bias corrections change every step, its six other values do not)."""
    new = list(old)
    for i, v in enumerate(values):
        if v is not old_values[i]:
            a = new[i] = np.asarray(v).astype(DTYPES[dtype])
            a.flags.writeable = False
    return new


def same_objects(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is not y:
            return False
    return True


def assign(t: Tensor, expr):
    st = t._storage
    members = st.members
    if members is None:
        t._expr = expr
    elif len(members) == 1 and (t._member is None or t._member.positions is None):
        # views.assign's hot case, inline: the storage's only tensor, its whole value (a
        # Parameter every step; one that `F.linear` viewed with `.t()` has a Member whose
        # positions, once derived, are None: it is the root's value itself)
        t._expr = expr
        st.root_expr = expr
    else:
        views.assign(t, expr)
    st.version += 1
