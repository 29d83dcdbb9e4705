"""torch.func and torch.utils.checkpoint, on gradjit's compiled functional transforms.

torch.func.grad / vmap / jacrev / jacfwd / hessian / vjp / jvp are the JAX-style transforms
(gradjit's own, compiled); functional_call runs a Module with other parameter tensors.
"""
from __future__ import annotations

import contextlib

from tracer import api, jax_extras

# ---- torch.func ---------------------------------------------------------------------------


def grad(func, argnums=0, has_aux=False):
    """torch.func.grad: the gradient function of scalar-valued func (compiled)."""
    return api.grad(func, argnums=argnums, has_aux=has_aux)


def grad_and_value(func, argnums=0, has_aux=False):
    """torch.func.grad_and_value: (grads, value), the reverse of JAX's value_and_grad order."""
    vg = api.value_and_grad(func, argnums=argnums, has_aux=has_aux)

    def run(*args, **kwargs):
        value, grads = vg(*args, **kwargs)
        return grads, value
    return run


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """torch.func.vmap: func mapped over axis in_dims of its arguments."""
    return api.vmap(func, in_axes=in_dims, out_axes=out_dims)


def jacrev(func, argnums=0, *, has_aux=False):
    """torch.func.jacrev: the Jacobian by reverse mode (shape out.shape + in.shape)."""
    return api.jacobian(func, argnums=argnums, has_aux=has_aux)


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """torch.func.jacfwd: the same Jacobian (gradjit builds it by batched reverse mode)."""
    return api.jacobian(func, argnums=argnums, has_aux=has_aux)


def hessian(func, argnums=0):
    """torch.func.hessian of scalar-valued func."""
    return api.hessian(func, argnums=argnums)


def vjp(func, *primals, has_aux=False):
    """torch.func.vjp: (output, vjp_fn)."""
    return api.vjp(func, *primals, has_aux=has_aux)


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """torch.func.jvp: (output, jvp_out)."""
    return api.jvp(func, tuple(primals), tuple(tangents))


def linearize(func, *primals):
    """torch.func.linearize: (output, jvp_fn), jvp_fn(*tangents) the JVP at primals."""
    return jax_extras.linearize(func, *primals)


@contextlib.contextmanager
def _swapped(module, tensors: dict):
    """Temporarily binds module attributes at dotted names to the given tensors."""
    saved = []
    try:
        for name, value in tensors.items():
            *path, leaf = name.split(".")
            owner = module
            for part in path:
                owner = getattr(owner, part)
            table = owner._parameters if leaf in owner._parameters else (
                owner._buffers if leaf in owner._buffers else None)
            if table is None:
                raise AttributeError(f"{type(module).__name__} has no parameter or buffer "
                                     f"named '{name}'")
            saved.append((table, leaf, table[leaf]))
            table[leaf] = value
        yield
    finally:
        for table, leaf, old in reversed(saved):
            table[leaf] = old


def functional_call(module, parameter_and_buffer_dicts, args=(), kwargs=None, *,
                    tie_weights=True, strict=False):
    """torch.func.functional_call: module(*args, **kwargs) with the named parameters and
    buffers replaced by the given tensors (so gradients flow to those tensors)."""
    tensors = {}
    dicts = parameter_and_buffer_dicts if isinstance(parameter_and_buffer_dicts, (tuple, list)) \
        else (parameter_and_buffer_dicts,)
    for d in dicts:
        tensors.update(d)
    args = args if isinstance(args, tuple) else (args,)
    with _swapped(module, tensors):
        return module(*args, **(kwargs or {}))


# ---- torch.utils.checkpoint ---------------------------------------------------------------

def checkpoint_call(function, *args, use_reentrant=None, context_fn=None, determinism_check=None,
                    debug=None, preserve_rng_state=True, **kwargs):
    """torch.utils.checkpoint.checkpoint: function(*args, **kwargs), same values and
    gradients. PyTorch recomputes the forward in backward to save memory; gradjit's compiled
    backward already chooses what to keep, so the call is made once."""
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """torch.utils.checkpoint.checkpoint_sequential: the modules applied in order."""
    modules = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for m in modules:
        input = m(input)
    return input
