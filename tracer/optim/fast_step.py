"""A group's optimizer step again, without its per-parameter bookkeeping in Python.

The general step of a group (base.Optimizer._step_group) works out for every parameter its
hyperparameters (`_prepare`), the names and tensors of its state, the program's key, then
calls the program and points each parameter and state tensor at its new value. For the
transformer block's AdamW over 15 parameters that was ~0.44 ms of Python per step beside
~0.19 ms of native call.

After a general step, a *plan* of the group is kept when the step can repeat as it was:
every parameter reads one shared set of hyperparameters (SGD's, and Adam's while the step
counts are equal), and each parameter's state after the step holds exactly the tensors the
program read and wrote. The next step of the group follows the plan when

  - the parameters with a gradient are the same objects, in the same order;
  - the optimizer's state is the same dict, each parameter's state the same dict with as
    many entries, each state tensor the same Tensor object;
  - the parameter, its gradient and every state tensor hold data of the type the program
    read (a pending value, a new shape or dtype: the general path);
  - the structural flags (`_flags`) are equal and the subclass's `_shared_hypers` gives one
    set of hyperparameters for all (it checks, e.g., that the step counts are all equal,
    before it advances them).

Then the key the general path would build is the plan's (flags, input types, the scalars'
dtype, every parameter at slot 0, the state names, the hyperparameter names), so it runs the
same program on the same arrays: the results are bitwise the general path's. Hyperparameter
values are read from the group every step (a scheduler's new lr gives new 0-d arrays, as in
the general path, not a new plan). Anything else takes the general path, which keeps a new
plan for the group. `ENABLED` and `STATS` are for tests and comparison.
"""
from __future__ import annotations

from tracer.expr import data_exprs
from tracer.optim import in_place
from tracer.optim.plan_code import make_gather, make_outputs, make_store
from tracer.optim.step_arrays import assign, renewed_scalars, same_objects
from tracer.tensor import Tensor

__all__ = ["ENABLED", "CODE_ENABLED", "STATS", "learn", "follow", "no_shared_hypers"]

ENABLED = True
STATS = {"followed": 0, "learnt": 0, "missed": 0, "generated": 0}
# a plan followed this many times gets its checks and stores as generated code
# (tracer/optim/plan_code.py). Made then, not when learnt: making it costs ~4-6 ms CPU for
# the transformer block's 15 parameters (against ~0.5 s for its first step's programs)
# and saves ~45 us a step, so a plan replaced soon would not earn it back
CODE_AFTER = 5
CODE_ENABLED = True
# the in-place outputs' tests as generated code too (plan_code.make_outputs); off for tests
# and comparison (in_place.outputs' loop)
OUTPUTS_CODE = True


class GroupPlan:
    __slots__ = ("group", "params", "state", "dicts", "sizes", "held", "types", "flags",
                 "hyper_names", "dtype", "values", "scalars", "run", "out_types", "targets",
                 "checked", "follows", "gather", "store", "into", "in_place", "outputs")


def no_shared_hypers(self, group: dict, states: list) -> dict | None:
    """Optimizer._shared_hypers's default: no shared set, so the group keeps no plan."""
    return None


def learn(opt, group: dict, params: list, names: list, out_names: list, types: tuple,
          flags: tuple, hypers: list, slots: list, scalars: list, program: tuple):
    """Keeps a plan of the group's step just taken when it can repeat as it was (see the
    module docstring); drops the group's old plan otherwise."""
    plans = opt._fast_plans
    plans.pop(id(group), None)
    cls = type(opt)
    if not ENABLED or cls._shared_hypers is no_shared_hypers or \
            _owner(cls, "_shared_hypers") is not _owner(cls, "_prepare"):
        return            # (a subclass's own _prepare: _shared_hypers may not do what it does)
    # every parameter at slot 0 reads the same 0-d arrays: one shared set of values
    h0 = hypers[0]
    if any([s != 0 for s in slots]) or any([tuple(h) != tuple(h0) for h in hypers]):
        return
    state = opt.state
    dicts, sizes, held, targets = [], [], [], []
    for p, before, after in zip(params, names, out_names):
        st = state[p]
        now = sorted([k for k, v in st.items() if isinstance(v, Tensor)])
        if before != after or now != after:    # the next step would read other state
            return
        dicts.append(st)
        sizes.append(len(st))
        tensors = tuple([(k, st[k]) for k in now])
        held.append(tensors)
        targets.append(p)
        targets += [t for _, t in tensors]
    plan = GroupPlan()
    plan.group, plan.params, plan.state = group, tuple(params), state
    plan.dicts, plan.sizes, plan.held, plan.types = dicts, sizes, held, types
    plan.flags, plan.hyper_names = flags, tuple(h0)
    plan.dtype = params[0]._expr.value.type.dtype
    plan.values, plan.scalars = tuple(h0.values()), scalars
    plan.run, plan.out_types = program[0], program[2]
    # base.StepProgram runs without checking arrays again; a program with captured
    # constants (a closure adding them) does not offer that
    plan.checked = getattr(program[0], "run_checked", None)
    # state tensors written over their old arrays (tracer/optim/in_place.py): None until
    # the generated code runs and the program passed the check, () when it does not apply
    plan.into = getattr(program[0], "run_into", None)
    plan.in_place = None if plan.into is not None and in_place.ENABLED and \
        in_place.aliasable(program[0].fn) else ()
    plan.targets = targets
    plan.follows, plan.gather, plan.store, plan.outputs = 0, None, None, None
    plans[id(group)] = plan
    STATS["learnt"] += 1


def follow(opt, group: dict, params: list) -> bool:
    """Runs the group's step from its plan; False (nothing changed) when the plan does not
    apply, and the caller takes the general path."""
    plan = opt._fast_plans.get(id(group))
    if plan is None or not ENABLED or plan.group is not group or opt.state is not plan.state \
            or not same_objects(params, plan.params):
        return False
    gather = plan.gather
    arrays = _input_arrays(opt.state, params, plan) if gather is None else gather(opt.state)
    if arrays is None or opt._flags(group) != plan.flags:
        STATS["missed"] += 1
        return False
    h = opt._shared_hypers(group, plan.dicts)    # advances the step counts when not None
    if h is None:
        STATS["missed"] += 1
        return False
    values = tuple(h.values())
    if not same_objects(values, plan.values):
        if tuple(h) != plan.hyper_names:
            raise AssertionError("hyperparameter names changed under equal flags")
        plan.scalars = renewed_scalars(plan.dtype, values, plan.values, plan.scalars)
        plan.values = values
    out = None if gather is None or plan.checked is None else _run_generated(plan, arrays)
    if out is None:
        out = plan.run(arrays + plan.scalars)
        for t, e in zip(plan.targets, data_exprs(out, plan.out_types)):
            assign(t, e)
    else:
        plan.store(out)
        STATS["generated"] += 1
    STATS["followed"] += 1
    plan.follows += 1
    if plan.follows == CODE_AFTER and gather is None and CODE_ENABLED:
        plan.gather, plan.store = make_gather(plan), make_store(plan)
    return True


def _run_generated(plan: GroupPlan, arrays: list) -> list | None:
    """The program's outputs on the generated path: run_checked's, except that state
    tensors nobody else can see are written in place (tracer/optim/in_place.py)."""
    found = plan.in_place
    if found is None:             # once: is the program safe to run in place?
        exe = plan.run.exe
        specs = exe.output_specs()
        found = plan.in_place = in_place.pairs(plan.params, plan.held) if in_place.verified(
            plan.into, specs, arrays + plan.scalars,
            in_place.pairs(plan.params, plan.held)) else ()
        # kept outputs change the counts the generated test expects: the loop's test then
        plan.outputs = make_outputs(plan, specs, found) if found and OUTPUTS_CODE and \
            not exe.recycles() else None
    if not found or not in_place.ENABLED:
        return plan.checked(arrays + plan.scalars)
    make = plan.outputs
    if make is not None:
        outs = make(arrays)
    else:
        exe = plan.run.exe
        outs = in_place.outputs(exe.output_specs(), arrays, plan.targets, found,
                                exe.kept_ids())
    return plan.into(arrays + plan.scalars, outs)


def _owner(cls, name: str):
    """The class of cls's MRO that defines name."""
    for k in cls.__mro__:
        if name in k.__dict__:
            return k
    return None


def _input_arrays(state: dict, params: list, plan: GroupPlan) -> list | None:
    """The program's input arrays (each parameter, its gradient, its state tensors), or None
    when a state dict or tensor was replaced, or a value is pending or of another type."""
    arrays = []
    types = iter(plan.types)
    for p, st, size, held in zip(params, plan.dicts, plan.sizes, plan.held):
        if state.get(p) is not st or len(st) != size:
            return None
        for t in (p, p._grad):
            e = t._expr
            want = next(types)
            a = e.data
            if a is None or (e.value.type is not want and e.value.type != want):
                return None
            arrays.append(a)
        for name, t in held:
            e = t._expr
            want = next(types)
            a = e.data
            if st.get(name) is not t or a is None or \
                    (e.value.type is not want and e.value.type != want):
                return None
            arrays.append(a)
    return arrays
