"""torch.optim for gradjit: SGD (momentum, dampening, nesterov, weight decay), Adam, AdamW.

The update formulas are PyTorch's (torch/optim/sgd.py and adam.py, single-tensor path),
written once as functions of Tensors (`_update`: parameter, gradient, state, and the
hyperparameters as 0-d Tensors). A step traces them with symbolic inputs into one
Function for all the parameters of a group, compiles it (cached by the kinds and shapes of
its inputs) and from then on only calls that native code on the parameters' arrays: no
op is recorded per step. Hyperparameters (lr, betas, Adam's bias corrections, ...) are
inputs of the program, not constants in it, so changing the learning rate between steps
does not recompile. Inside a functional trace (the parameters are symbolic) the same
update is recorded into the trace instead.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ir import TensorType
from ir.core import DTYPES, dtype_of_numpy

from tracer import pipeline
from tracer.autograd import views
from tracer.autograd.grad_mode import enable_grad, no_grad
from tracer.creation import zeros_like
from tracer.expr import build_function, data_expr, param_expr
from tracer.tensor import Tensor, realize, tensor_from_array

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


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

    def add_param_group(self, group: dict):
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group = dict(group, params=params)
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
        scalars = [np.asarray(v).astype(DTYPES[p._expr.type.dtype])
                   for p, h in zip(params, hypers) for v in h.values()]
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
        ids = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [ids.setdefault(id(p), len(ids)) for p in group["params"]]
            groups.append(packed)
        params = [p for g in self.param_groups for p in g["params"]]
        state = {ids[id(p)]: dict(self.state[p]) for p in params if p in self.state}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict):
        params = [p for g in self.param_groups for p in g["params"]]
        for group, saved in zip(self.param_groups, state_dict["param_groups"]):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = defaultdict(dict)
        for index, st in state_dict["state"].items():
            self.state[params[int(index)]] = dict(st)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


def _assign(t: Tensor, expr):
    views.assign(t, expr)
    t._storage.version += 1


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov, decay."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _flags(self, group):
        return (group["momentum"] != 0, group["weight_decay"] != 0, bool(group["nesterov"]),
                bool(group["maximize"]))

    def _prepare(self, p, group):
        # NOTE: complements are taken in double precision, as PyTorch's Python code does
        return {"lr": group["lr"], "momentum": group["momentum"],
                "one_minus_dampening": 1 - group["dampening"],
                "weight_decay": group["weight_decay"]}

    def _update(self, p, grad, state, h, flags):
        use_momentum, decay, nesterov, maximize = flags
        grad = -grad if maximize else grad
        if decay:
            grad = grad + p * h["weight_decay"]
        if use_momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad                      # torch.clone(grad).detach()
            else:
                buf = buf * h["momentum"] + grad * h["one_minus_dampening"]
            state = {"momentum_buffer": buf}
            grad = grad + buf * h["momentum"] if nesterov else buf
        return p - grad * h["lr"], state


class Adam(Optimizer):
    """Adam (Kingma & Ba) with optional L2 weight decay and AMSGrad, as PyTorch computes it."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _flags(self, group):
        return (group["weight_decay"] != 0, bool(group["amsgrad"]), bool(group["maximize"]))

    def _prepare(self, p, group):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        step = state["step"]
        return {"one_minus_beta1": 1 - beta1, "beta2": beta2, "one_minus_beta2": 1 - beta2,
                "eps": group["eps"],
                "weight_decay": group["weight_decay"],
                "step_size": group["lr"] / (1 - beta1 ** step),
                "correction2_sqrt": math.sqrt(1 - beta2 ** step)}

    def _update(self, p, grad, state, h, flags):
        decay, amsgrad, maximize = flags
        grad = -grad if maximize else grad
        if decay:
            grad = grad + p * h["weight_decay"]
        exp_avg = state["exp_avg"] + (grad - state["exp_avg"]) * h["one_minus_beta1"]  # lerp_
        exp_avg_sq = state["exp_avg_sq"] * h["beta2"] + grad * grad * h["one_minus_beta2"]
        new = {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        second = exp_avg_sq
        if amsgrad:
            second = new["max_exp_avg_sq"] = state["max_exp_avg_sq"].maximum(exp_avg_sq)
        denom = second.sqrt() / h["correction2_sqrt"] + h["eps"]
        return p - exp_avg / denom * h["step_size"], new


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's AdamW: the
    parameter shrinks by lr * weight_decay before the Adam step, the gradient is left alone."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)

    def _prepare(self, p, group):
        h = super()._prepare(p, group)
        h["decay_factor"] = 1 - group["lr"] * group["weight_decay"]
        return h

    def _update(self, p, grad, state, h, flags):
        decay, amsgrad, maximize = flags
        if decay:
            p = p * h["decay_factor"]
        return super()._update(p, grad, state, h, (False, amsgrad, maximize))
