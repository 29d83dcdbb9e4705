"""torch.autograd.gradcheck / gradgradcheck: autograd's gradients vs finite differences.

As PyTorch's: inputs that require grad are perturbed one element at a time by ±eps
(central differences; use float64 inputs), each output's Jacobian is rebuilt row by row
with autograd.grad, and the two must agree within atol + rtol * |numerical|. On a mismatch
`GradcheckError` (a RuntimeError) names the output and input, or False is returned with
raise_exception=False.
"""
from __future__ import annotations

import numpy as np

from tracer.autograd.engine import grad as autograd_grad
from tracer.creation import tensor
from tracer.tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by gradcheck when analytical and numerical gradients disagree."""


def _outputs(func, inputs) -> list[Tensor]:
    out = func(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _numerical(func, inputs, k: int, eps: float) -> list[np.ndarray]:
    """d outputs / d inputs[k] by central differences: one (out.size, in.size) per output."""
    x = inputs[k]
    base = x.detach().numpy().copy()
    columns = []
    for i in range(base.size):
        values = []
        for sign in (1, -1):
            pert = base.copy()
            pert.reshape(-1)[i] += sign * eps
            args = list(inputs)
            # grad mode stays on and the input keeps requires_grad: func may differentiate
            # inside (gradgradcheck's first derivatives do)
            args[k] = _like(x, pert)
            values.append([o.detach().numpy().astype(np.float64).reshape(-1)
                           for o in _outputs(func, args)])
        columns.append([(p - m) / (2 * eps) for p, m in zip(*values)])
    return [np.stack([c[j] for c in columns], axis=1) if columns else np.zeros((0, 0))
            for j in range(len(columns[0]) if columns else 0)]


def _like(x: Tensor, data: np.ndarray) -> Tensor:
    return tensor(data, dtype=x.dtype, requires_grad=x.requires_grad)


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked=None, check_forward_ad: bool = False) -> bool:
    """True when autograd's gradients of func at inputs match finite differences."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff = [k for k, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, "
                         "but none of the them have requires_grad=True.")
    outs = _outputs(func, inputs)
    for j, out in enumerate(outs):
        if not out.requires_grad:
            continue
        flat = out.reshape(-1)
        for k in diff:
            numerical = _numerical(func, inputs, k, eps)[j]
            rows = []
            for i in range(flat.shape[0]):
                (g,) = autograd_grad(flat[i], [inputs[k]], retain_graph=True, allow_unused=True)
                rows.append(np.zeros(inputs[k].numel()) if g is None
                            else g.detach().numpy().astype(np.float64).reshape(-1))
            analytical = np.stack(rows) if rows else np.zeros((0, inputs[k].numel()))
            if not np.allclose(analytical, numerical, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(
                    f"Jacobian mismatch for output {j} with respect to input {k},\n"
                    f"numerical:{numerical!r}\nanalytical:{analytical!r}\n")
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, **_ignored) -> bool:
    """gradcheck of the gradients themselves (second derivatives), with grad_outputs fixed
    (random ones when not given, drawn with a fixed seed)."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    outs = _outputs(func, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [_like(o, rng.standard_normal(o.shape)) for o in outs]
    grad_outputs = list(grad_outputs) if isinstance(grad_outputs, (tuple, list)) \
        else [grad_outputs]
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]

    def first_derivatives(*xs):
        ys = _outputs(func, xs)
        wrt = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        grads = autograd_grad(ys, wrt, grad_outputs, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivatives, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception) if diff else True
