"""nn.Module and nn.Parameter: PyTorch's module protocol, enough to build and train models.

A Module registers the Parameters, buffers and sub-Modules assigned to its attributes, so
`parameters()`, `named_parameters()`, `state_dict()`, `zero_grad()`, `train()`/`eval()`
and `repr()` (PyTorch's layout) work over the whole tree. Calling a module calls its
`forward`, which records ops lazily like any other Tensor code.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

from tracer import creation
from tracer.autograd import views
from tracer.autograd.grad_mode import no_grad
from tracer.autograd.nodes import TENSOR_TYPE_NAMES
from tracer.dtypes import DType, bfloat16, float16, float32, float64
from tracer.tensor import Tensor, alias_expr


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as a parameter (requires_grad by default)."""

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            data = creation.empty(0)
        Tensor.__init__(self, alias_expr(data._expr))
        views.share(data, self, identity=True)
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (Parameter, (self.detach(), self.requires_grad))


def _typename(value) -> str:
    """PyTorch's torch.typename: torch.FloatTensor for a float32 Tensor."""
    if isinstance(value, Tensor):
        return TENSOR_TYPE_NAMES[value._expr.type.dtype]
    return type(value).__name__


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


# bumped by every change of any Module's parameter, buffer or child tables, attribute
# assignment and train()/eval(): what compile(model) caches about a module tree (its
# tensors, its modes) is valid while this is unchanged (tracer/compile.py)
GENERATION = [0]


class _Table(OrderedDict):
    """A Module's table of parameters, buffers or children: every change bumps GENERATION."""

    def __setitem__(self, key, value):
        GENERATION[0] += 1
        super().__setitem__(key, value)

    def __delitem__(self, key):
        GENERATION[0] += 1
        super().__delitem__(key)

    def pop(self, *args):
        GENERATION[0] += 1
        return super().pop(*args)

    def popitem(self, last: bool = True):
        GENERATION[0] += 1
        return super().popitem(last)

    def clear(self):
        GENERATION[0] += 1
        super().clear()

    def update(self, *args, **kwargs):
        GENERATION[0] += 1
        super().update(*args, **kwargs)

    def setdefault(self, key, default=None):
        GENERATION[0] += 1
        return super().setdefault(key, default)

    def move_to_end(self, key, last: bool = True):
        GENERATION[0] += 1
        super().move_to_end(key, last)


class Module:
    """Base class of layers and models (PyTorch's torch.nn.Module)."""

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", _Table())
        object.__setattr__(self, "_buffers", _Table())
        object.__setattr__(self, "_modules", _Table())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_hooks_with_kwargs", set())

    # ---- registration --------------------------------------------------------------------

    def __setattr__(self, name: str, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign to a Module before Module.__init__() call")
        GENERATION[0] += 1            # also `model.training = False`, a plain attribute
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            self._forget(name, keep=params)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=modules)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as parameter "
                                f"'{name}' (torch.nn.Parameter or None expected)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as child module "
                                f"'{name}' (torch.nn.Module or None expected)")
            modules[name] = None
        elif name in buffers:
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep=None):
        """name out of every table but keep (whose entry, replaced, keeps its place in the
        order parameters() and children() give, as in PyTorch)."""
        for table in (self._parameters, self._modules, self._buffers):
            if table is not keep:
                table.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str):
        GENERATION[0] += 1
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None):
        _check_new_name(self, name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                            "(torch.nn.Parameter or None required)")
        if param is None:
            self._forget(name)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True):
        _check_new_name(self, name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                            "(torch Tensor or None required)")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def add_module(self, name: str, module: "Module | None"):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        self._forget(name, keep=self._modules)
        self._modules[name] = module

    register_module = add_module

    # ---- calling ---------------------------------------------------------------------------

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        pre, post = d.get("_forward_pre_hooks"), d.get("_forward_hooks")
        if not pre and not post:
            return self.forward(*args, **kwargs)
        return call_with_hooks(self, pre, post, args, kwargs)

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False):
        """hook(module, args) -> None or new args (a tuple, or one value); with_kwargs:
        hook(module, args, kwargs) -> None or (args, kwargs). Returns a removable handle."""
        return _add_hook(self, self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False):
        """hook(module, args, output) -> None or a replacement output; with_kwargs:
        hook(module, args, kwargs, output). Returns a removable handle."""
        return _add_hook(self, self._forward_hooks, hook, prepend, with_kwargs)

    # ---- traversal -------------------------------------------------------------------------

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        if remove_duplicate:
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                                remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named(self, table: str, prefix: str, recurse: bool) -> list:
        """(name, tensor) of table over the tree, each tensor once; remembered while no
        module's tables change (GENERATION). NOTE: a training step's `model.parameters()`
        walked the transformer block's 14 modules through nested generators: ~40 us."""
        memo = self.__dict__.get("_named_memo")     # (GENERATION, {key: [(name, t)]})
        if memo is None or memo[0] != GENERATION[0]:
            memo = (GENERATION[0], {})
            object.__setattr__(self, "_named_memo", memo)      # (not a change of the tree)
        key = (table, prefix, recurse)
        found = memo[1].get(key)
        if found is None:
            found = memo[1][key] = self._walk_named(table, prefix, recurse)
        return found

    def _walk_named(self, table: str, prefix: str, recurse: bool) -> list:
        seen, found = set(), []
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, t in getattr(module, table).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                found.append(((f"{mod_prefix}.{name}" if mod_prefix else name), t))
        return found

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        if not remove_duplicate:                    # every (name, parameter), shared or not
            modules = self.named_modules(prefix=prefix, remove_duplicate=False) if recurse \
                else [(prefix, self)]
            for mod_prefix, module in modules:
                for name, p in module._parameters.items():
                    if p is not None:
                        yield (f"{mod_prefix}.{name}" if mod_prefix else name), p
            return
        yield from self._named("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        for _, p in self._named("_parameters", "", recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        yield from self._named("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ---------------------------------------------------------------

    def train(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        GENERATION[0] += 1
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                with no_grad():
                    p.grad.zero_()

    # ---- state -----------------------------------------------------------------------------

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """PyTorch's order: each module's parameters, then its persistent buffers, then its
        children's entries under their names."""
        out = OrderedDict() if destination is None else destination
        skip = self.__dict__.get("_non_persistent", ())
        entries = list(self._parameters.items()) + [
            (n, b) for n, b in self._buffers.items() if n not in skip]
        for name, t in entries:
            if t is not None:
                out[prefix + name] = t if keep_vars else t.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if not hasattr(state_dict, "items") or not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        values = {k: _as_tensor(v) for k, v in state_dict.items() if k in own}
        # PyTorch's order: missing, unexpected (strict only), then every size mismatch
        parts = []
        if strict and missing:
            parts.append("Missing key(s) in state_dict: "
                         + ", ".join(f'"{k}"' for k in missing) + ". ")
        if strict and unexpected:
            parts.append("Unexpected key(s) in state_dict: "
                         + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        parts += [f"size mismatch for {k}: copying a param with shape {v.shape!r} from "
                  f"checkpoint, the shape in current model is {own[k].shape!r}."
                  for k, v in values.items() if v.shape != own[k].shape]
        if parts:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(parts))
        with no_grad():
            for name, value in values.items():
                own[name].copy_(value)
        return _IncompatibleKeys(missing, unexpected)

    def to(self, *args, **kwargs):
        """Converts floating parameters and buffers to a dtype (devices are all the CPU)."""
        dtype = kwargs.get("dtype") or next((a for a in args if isinstance(a, DType)), None)
        if dtype is None:
            return self
        with no_grad():
            for t in list(self.parameters()) + list(self.buffers()):
                if t.dtype.is_floating_point:
                    t.data = t.to(dtype)
        return self

    def double(self):
        return self.to(float64)

    def float(self):
        return self.to(float32)

    def half(self):
        return self.to(float16)                # refused: tracer/dtypes.AbsentDType

    def bfloat16(self):
        return self.to(bfloat16)

    def cpu(self):
        return self

    # ---- printing ---------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"


class RemovableHandle:
    """The handle of a registered hook: remove() (or leaving a `with` block) unregisters."""
    _next_id = 0

    def __init__(self, table: OrderedDict, kwargs_ids: set):
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1
        self._table, self._kwargs_ids = table, kwargs_ids

    def remove(self):
        self._table.pop(self.id, None)
        self._kwargs_ids.discard(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _add_hook(module: Module, table: OrderedDict, hook, prepend: bool, with_kwargs: bool):
    handle = RemovableHandle(table, module._hooks_with_kwargs)
    table[handle.id] = hook
    if with_kwargs:
        module._hooks_with_kwargs.add(handle.id)
    if prepend:
        table.move_to_end(handle.id, last=False)
    return handle


def call_with_hooks(module: Module, pre, post, args: tuple, kwargs: dict):
    """module.forward(*args, **kwargs) with its forward pre-hooks and hooks, as PyTorch
    runs them (registration order; a hook's non-None result replaces args / the output)."""
    with_kwargs = module._hooks_with_kwargs
    for hook_id, hook in list((pre or {}).items()):
        if hook_id in with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError("forward pre-hook must return None or a tuple of "
                                       f"(new_args, new_kwargs), but got {result}.")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    output = module.forward(*args, **kwargs)
    for hook_id, hook in list((post or {}).items()):
        result = (hook(module, args, kwargs, output) if hook_id in with_kwargs
                  else hook(module, args, output))
        if result is not None:
            output = result
    return output


def _as_tensor(value) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return creation.tensor(value)


def _check_new_name(module, name, kind: str, table: dict):
    """PyTorch's checks of a name given to register_buffer / register_parameter."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {_typename(name)}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if hasattr(module, name) and name not in table:
        raise KeyError(f"attribute '{name}' already exists")


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """load_state_dict's result: a named pair (PyTorch's), so `missing, unexpected = r`."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")
