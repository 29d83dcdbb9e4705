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

from ir import TensorType
from ir.core import dtype_of_numpy

from runtime import config
from tracer import pipeline
from tracer.autograd.grad_mode import enable_grad, no_grad
from tracer.creation import tensor
from tracer.errors import warn_at_user
from tracer.expr import build_function, data_exprs, param_expr
from tracer.optim import fast_step
from tracer.ops.operands import user_error
from tracer.optim.step_arrays import assign as _assign
from tracer.optim.step_arrays import same_objects as _same_objects
from tracer.optim.step_arrays import scalar_arrays as _scalar_arrays
from tracer.tensor import Tensor, realize, tensor_from_array

__all__ = ["Optimizer"]


def executable(fn) -> "StepProgram":
    """fn compiled once now (cached by structure): the program of one kind of step, called
    on a list of arrays."""
    return StepProgram(fn)


class StepProgram:
    """A compiled step: `program(arrays)` checks the arrays and runs it on the configured
    backend; `run_checked` is for callers that checked them already (exact dtype and shape,
    C-contiguous: tracer/optim/plan_code.py)."""
    __slots__ = ("fn", "exe")

    def __init__(self, fn):
        self.fn = fn
        self.exe = pipeline.compile_function(fn)

    def __call__(self, arrays: list) -> list:
        exe = self.exe = pipeline.current(self.exe, self.fn)
        return list(exe(*arrays))

    def run_into(self, arrays: list, outs: list) -> list | None:
        """run_checked writing into outs (exactly the result types, C-contiguous); None when
        another backend is configured."""
        exe = self.exe
        if exe.backend != "native" or config.backend() != "native":
            return None
        return exe.run_into(arrays, outs)

    def run_checked(self, arrays: list) -> list | None:
        """The native program's fresh outputs (exactly its result types), without checking
        the arrays again; None when another backend is configured (call the program)."""
        exe = self.exe
        if exe.backend != "native" or config.backend() != "native":
            return None
        return exe.run(arrays)


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
        self._last_program = None                # (key, program) of the last step
        self._fast_plans: dict = {}              # id(group) -> fast_step.GroupPlan
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
        if len({id(p) for p in params}) != len(params):
            warn_at_user("optimizer contains a parameter group with duplicate parameters; in "
                         "future, this will cause an error; see "
                         "github.com/pytorch/pytorch/issues/40967 for more information")
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
        self._opt_called = True             # an LR scheduler's step checks the order
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p._grad is not None]
                if params and not fast_step.follow(self, group, params):
                    self._step_group(group, params)
        return loss

    # ---- what a subclass defines ---------------------------------------------------------

    def _flags(self, group: dict) -> tuple:
        """The hyperparameters that change the program's structure (branches in _update)."""
        raise NotImplementedError

    def _prepare(self, p: Tensor, group: dict) -> dict:
        """Updates p's step bookkeeping; returns its hyperparameters as Python floats."""
        raise NotImplementedError

    # Optional: the hyperparameters every parameter of the group reads this step, from the
    # group and the parameters' state dicts (already initialised), with the step's bookkeeping
    # done (step counts advanced); or None, before changing anything, when the parameters
    # would not all read the same values. Defined, it lets a repeating step skip _prepare
    # (tracer/optim/fast_step.py).
    _shared_hypers = fast_step.no_shared_hypers

    def _update(self, p: Tensor, grad: Tensor, state: dict, h: dict, flags: tuple):
        """PyTorch's update of one parameter: returns (new p, new tensor state)."""
        raise NotImplementedError

    # ---- running a step ------------------------------------------------------------------

    def _step_group(self, group: dict, params: list[Tensor]):
        flags = self._flags(group)
        hypers = [self._prepare(p, group) for p in params]
        state = self.state
        names, tensors = [], []
        for p in params:
            st = state[p]
            keys = [k for k, v in st.items() if isinstance(v, Tensor)]
            keys.sort()
            names.append(keys)
            tensors.append(p)
            tensors.append(p._grad)
            tensors += [st[k] for k in keys]
        # the hyperparameters go in as 0-d arrays (program inputs, so a changed lr does not
        # recompile); they only become Tensors when the step is traced symbolically.
        # Parameters whose values are the previous one's share its arrays, and the program
        # reads them once (SGD, 4 parameters: 4 scalar inputs, not 16)
        scalars, slots = [], []
        last_dtype, last_values, last_arrays, start = None, (), None, 0
        for p, h in zip(params, hypers):
            dtype, values = p._expr.value.type.dtype, tuple(h.values())
            # the same value objects as the previous parameter's (SGD's, read from the
            # group): the same arrays, without keying them again
            if dtype != last_dtype or not _same_objects(values, last_values):
                arrays = _scalar_arrays(dtype, values)
                if arrays is not last_arrays:       # (equal values: the same cached list)
                    start = len(scalars)
                    scalars += arrays
                last_dtype, last_values, last_arrays = dtype, values, arrays
            slots.append(start)
        exprs = [t._expr for t in tensors]
        if any([e.symbolic for e in exprs]):
            outs = self._apply(params, tensors, [tensor_from_array(a) for a in scalars],
                               slots, names, hypers, flags)
            self._store(params, [self._new_state_names.pop(id(p)) for p in params],
                        [t._expr for t in outs])
            self._fast_plans.pop(id(group), None)
            return
        key = (flags, tuple([e.value.type for e in exprs]),
               tuple([a.dtype.str for a in scalars]), tuple(slots), tuple(map(tuple, names)),
               tuple(map(tuple, hypers)))
        program = self._program(key, params, tensors, scalars, slots, names, hypers, flags)
        run, out_names, out_types = program
        arrays = run(realize(exprs) + scalars)
        self._store(params, out_names, data_exprs(arrays, out_types))
        fast_step.learn(self, group, params, names, out_names, key[1], flags, hypers, slots,
                        scalars, program)

    def _apply(self, params, tensors, scalars, slots, names, hypers, flags) -> list[Tensor]:
        """_update of every parameter, on the given Tensors (each parameter's hyperparameters
        start at its slot of scalars): the new p and state, in order."""
        outs, k = [], 0
        for p, keys, h, start in zip(params, names, hypers, slots):
            cur = tensors[k:k + 2 + len(keys)]
            k += 2 + len(keys)
            hyper = dict(zip(h, scalars[start:start + len(h)]))
            new_p, state = self._update(cur[0], cur[1], dict(zip(keys, cur[2:])), hyper, flags)
            self._new_state_names[id(p)] = sorted(state)
            outs += [new_p] + [state[n] for n in sorted(state)]
        return outs

    def _program(self, key, params, tensors, scalars, slots, names, hypers, flags):
        """(run, new state names per parameter, result types): the compiled update for this
        kind of step (traced once, with symbolic inputs)."""
        # NOTE: the last kind of step is compared first: equal tuples whose parts are the
        # same objects compare without hashing (TensorType's __hash__ is a Python call)
        last = self._last_program
        if last is not None and last[0] == key:
            return last[1]
        hit = self._programs.get(key)
        if hit is None:
            if len({id(p) for p in params}) != len(params):
                raise user_error(NotImplementedError,
                                 "gradjit's optimizers do not step a parameter listed twice in "
                                 "one parameter group (PyTorch warns and updates it once per "
                                 "listing): list each parameter once")
            symbols = [param_expr(t._expr.type) for t in tensors]
            hyper_symbols = [param_expr(TensorType(dtype_of_numpy(a.dtype), ()))
                             for a in scalars]
            outs = self._apply(params, [Tensor(e) for e in symbols],
                               [Tensor(e) for e in hyper_symbols], slots, names, hypers, flags)
            fn, captures = build_function("optimizer_step", symbols + hyper_symbols,
                                          [t._expr for t in outs])
            out_names = [self._new_state_names.pop(id(p)) for p in params]
            compiled = executable(fn)
            data = [c.data for c in captures]
            run = compiled if not data else (lambda arrays: compiled(arrays + data))
            hit = self._programs[key] = (run, out_names, [v.type for v in fn.results])
        self._last_program = (key, hit)
        return hit

    def _store(self, params, out_names: list, new: list):
        """Points each parameter and state tensor at its new value (PyTorch updates them in
        place: same objects, version bumped)."""
        it = iter(new)
        state = self.state
        for p, names in zip(params, out_names):
            _assign(p, next(it))
            st = state[p]
            for name in names:
                e = next(it)
                old = st.get(name)
                if isinstance(old, Tensor):
                    _assign(old, e)
                else:
                    st[name] = Tensor(e)

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
