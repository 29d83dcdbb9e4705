"""The Optimizer base class: parameter groups, state, state_dict, one compiled step.

The update formulas are PyTorch's (single-tensor path), each subclass's written once as
functions of Tensors (`_update`: parameter, gradient, state, and the hyperparameters as 0-d
Tensors). A step traces them with symbolic inputs into one
Function for all the parameters of a group, compiles it (cached by the kinds and shapes of
its inputs) and from then on only calls that native code on the parameters' arrays: no
op is recorded per step. Hyperparameters (lr, betas, Adam's bias corrections, ...) are
inputs of the program, not constants in it, so changing the learning rate between steps
does not recompile. Inside a functional trace (the parameters are symbolic) the same
update is recorded into the trace instead.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ir import TensorType
from ir.core import DTYPES, dtype_of_numpy

from tracer import pipeline
from tracer.autograd import views
from tracer.autograd.grad_mode import enable_grad, no_grad
from tracer.creation import tensor
from tracer.expr import build_function, data_expr, param_expr
from tracer.tensor import Tensor, realize, tensor_from_array

__all__ = ["Optimizer"]


def executable(fn):
    """A callable running fn on a list of arrays, compiled once now (cached by structure)."""
    exe = pipeline.compile_function(fn)

    def run(arrays):
        nonlocal exe
        exe = pipeline.current(exe, fn)
        return list(exe(*arrays))
    return run


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad, step."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._programs: dict = {}
        self._new_state_names: dict = {}
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got torch.FloatTensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: dict):
        """Adds a group of parameters with its own hyperparameters (defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True):
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    with no_grad():
                        p._grad.zero_()

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p._grad is not None]
                if params:
                    self._step_group(group, params)
        return loss

    # ---- what a subclass defines ---------------------------------------------------------

    def _flags(self, group: dict) -> tuple:
        """The hyperparameters that change the program's structure (branches in _update)."""
        raise NotImplementedError

    def _prepare(self, p: Tensor, group: dict) -> dict:
        """Updates p's step bookkeeping; returns its hyperparameters as Python floats."""
        raise NotImplementedError

    def _update(self, p: Tensor, grad: Tensor, state: dict, h: dict, flags: tuple):
        """PyTorch's update of one parameter: returns (new p, new tensor state)."""
        raise NotImplementedError

    # ---- running a step ------------------------------------------------------------------

    def _step_group(self, group: dict, params: list[Tensor]):
        flags = self._flags(group)
        hypers = [self._prepare(p, group) for p in params]
        names = [sorted(k for k, v in self.state[p].items() if isinstance(v, Tensor))
                 for p in params]
        tensors = []
        for p, keys in zip(params, names):
            tensors += [p, p._grad] + [self.state[p][k] for k in keys]
        # the hyperparameters go in as 0-d arrays (program inputs, so a changed lr does not
        # recompile); they only become Tensors when the step is traced symbolically
        scalars = []
        last = (None, (), [])
        for p, h in zip(params, hypers):
            dtype, values = p._expr.value.type.dtype, tuple(h.values())
            # the same value objects as the previous parameter's (SGD's, read from the
            # group): the same arrays, without keying them again
            if dtype != last[0] or not _same_objects(values, last[1]):
                last = (dtype, values, _scalar_arrays(dtype, values))
            scalars += last[2]
        if any(t._expr.symbolic for t in tensors):
            inputs = tensors + [tensor_from_array(a) for a in scalars]
            outs = self._apply(params, inputs, names, hypers, flags)
            new = [t._expr for t in outs]
        else:
            key = (flags, tuple([t._expr.type for t in tensors]),
                   tuple([a.dtype.str for a in scalars]), tuple(map(tuple, names)),
                   tuple(tuple(h) for h in hypers))
            run, _ = self._program(key, params, tensors, scalars, names, hypers, flags)
            arrays = run(realize([t._expr for t in tensors]) + scalars)
            new = [data_expr(a) for a in arrays]
        self._store(params, names, new)

    def _apply(self, params, inputs, names, hypers, flags) -> list[Tensor]:
        """_update of every parameter, on the given Tensors: the new p and state, in order."""
        outs, k = [], 0
        scalars = iter(inputs[sum(2 + len(n) for n in names):])
        for p, keys, h in zip(params, names, hypers):
            cur = inputs[k:k + 2 + len(keys)]
            k += 2 + len(keys)
            hyper = {name: next(scalars) for name in h}
            new_p, state = self._update(cur[0], cur[1], dict(zip(keys, cur[2:])), hyper, flags)
            self._new_state_names[id(p)] = sorted(state)
            outs += [new_p] + [state[n] for n in sorted(state)]
        return outs

    def _program(self, key, params, tensors, scalars, names, hypers, flags):
        """The compiled update for this kind of step (traced once, with symbolic inputs)."""
        hit = self._programs.get(key)
        if hit is None:
            symbols = [param_expr(t._expr.type) for t in tensors]
            symbols += [param_expr(TensorType(dtype_of_numpy(a.dtype), ())) for a in scalars]
            outs = self._apply(params, [Tensor(e) for e in symbols], names, hypers, flags)
            fn, captures = build_function("optimizer_step", symbols, [t._expr for t in outs])
            out_names = [self._new_state_names[id(p)] for p in params]
            compiled = executable(fn)
            data = [c.data for c in captures]
            hit = self._programs[key] = ((lambda arrays: compiled(arrays + data)), out_names)
        for p, n in zip(params, hit[1]):
            self._new_state_names[id(p)] = n
        return hit

    def _store(self, params, names, new):
        """Points each parameter and state tensor at its new value (PyTorch updates them in
        place: same objects, version bumped)."""
        it = iter(new)
        for p in params:
            _assign(p, next(it))
            state = self.state[p]
            for name in self._new_state_names.pop(id(p)):
                e = next(it)
                if isinstance(state.get(name), Tensor):
                    _assign(state[name], e)
                else:
                    state[name] = Tensor(e)

    def state_dict(self) -> dict:
        """PyTorch's layout: {'state': {index: {...}}, 'param_groups': [{..., 'params':
        [index, ...]}]}, indices counting parameters across groups; 'step' is a 0-d float32
        Tensor as in PyTorch. The state's Tensors are references, as PyTorch's are."""
        ids: dict = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [ids.setdefault(id(p), len(ids)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for p in (p for g in self.param_groups for p in g["params"]):
            if self.state.get(p):
                state[ids[id(p)]] = {k: (tensor(float(v)) if k == "step" and not
                                         isinstance(v, Tensor) else v)
                                     for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict):
        """Restores hyperparameters and state saved by state_dict (copies of the tensors)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"])
               for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        index = {i: p for g, s in zip(self.param_groups, saved_groups)
                 for i, p in zip(s["params"], g["params"])}
        for group, saved in zip(self.param_groups, saved_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = defaultdict(dict)
        for i, st in state_dict["state"].items():
            p = index[int(i)]
            self.state[p] = {k: _loaded_state(p, k, v) for k, v in st.items()}

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


def _loaded_state(p: Tensor, name: str, value):
    """A saved state entry as this optimizer keeps it: step a Python number, tensors copied
    in the parameter's dtype (PyTorch casts state to the parameter's dtype too)."""
    if name == "step":
        return int(value.item()) if isinstance(value, Tensor) else value
    if isinstance(value, Tensor):
        return tensor(value.detach().numpy().copy(), dtype=p.dtype)
    return value


# (dtype, hyperparameter values) -> their 0-d arrays: SGD's are the same every step
_SCALARS: dict = {}


def _scalar_arrays(dtype: str, values: tuple) -> list[np.ndarray]:
    if not all(type(v) in (float, int, bool) for v in values):
        return [np.asarray(v).astype(DTYPES[dtype]) for v in values]
    # floats by their bits (-0.0 is not 0.0, NaN finds itself)
    key = (dtype, tuple([v.hex() if type(v) is float else v for v in values]))
    hit = _SCALARS.get(key)
    if hit is None:
        if len(_SCALARS) >= 1024:             # Adam's bias corrections change every step
            _SCALARS.clear()
        hit = _SCALARS[key] = [np.asarray(v).astype(DTYPES[dtype]) for v in values]
        for a in hit:
            a.flags.writeable = False
    return hit


def _same_objects(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is not y:
            return False
    return True


def _assign(t: Tensor, expr):
    views.assign(t, expr)
    t._storage.version += 1
