"""torch.amp for gradjit: `GradScaler` and `autocast` as PyTorch 2.x defines them on a machine
without an accelerator (docs/compat.md).

GradScaler: enabled for device "cpu" (scale, unscale_, step, update, state_dict: PyTorch's
loss scaling, skipped steps on inf/NaN gradients, scale growth and backoff); a "cuda" scaler
warns and disables itself, as PyTorch without CUDA does (nanoGPT's train.py builds
`torch.cuda.amp.GradScaler(enabled=True)` and then calls it every step). autocast: "cuda"
warns and disables itself; "cpu" with float16/bfloat16 is refused, since gradjit has no
half-precision tensors and computing in float32 instead would print other numbers.
"""
from __future__ import annotations

import functools
import warnings

from tracer.autograd import no_grad
from tracer.device import device as _device
from tracer.dtypes import DType, bfloat16, float16
from tracer.ops.compare import isfinite
from tracer.ops.reduce import all as _all
from tracer.tensor import Tensor

__all__ = ["GradScaler", "autocast", "is_autocast_available"]

_CUDA_SCALER_OFF = "torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling."
_FRESH, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class GradScaler:
    """Loss scaling: gradients of `scale(loss)` are divided back by `unscale_` (or `step`),
    and a step whose gradients hold inf or NaN is skipped and shrinks the scale."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        self._device = str(_device(device))
        if enabled and self._device != "cpu":
            warnings.warn(_CUDA_SCALER_OFF, UserWarning, stacklevel=2)
            enabled = False
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer: dict = {}      # id(optimizer) -> [stage, found_inf]

    def is_enabled(self) -> bool:
        return self._enabled

    def scale(self, outputs):
        """outputs (a Tensor, or nested lists/tuples of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def _state(self, optimizer) -> list:
        return self._per_optimizer.setdefault(id(optimizer), [_FRESH, False])

    def unscale_(self, optimizer) -> None:
        """Divides every gradient of optimizer's parameters by the scale, in place."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state[0] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        if state[0] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        found_inf = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    p.grad.mul_(1.0 / self._scale)
                    found_inf = found_inf or not bool(_all(isfinite(p.grad)))
        state[:] = [_UNSCALED, found_inf]

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(), unless the (unscaled) gradients hold inf or NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is "
                               "enabled.")
        state = self._state(optimizer)
        if state[0] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state[0] == _FRESH:
            self.unscale_(optimizer)
        result = None if state[1] else optimizer.step(*args, **kwargs)
        state[0] = _STEPPED
        return result

    def update(self, new_scale=None) -> None:
        """Backs the scale off if a step this round saw inf/NaN, else grows it every
        growth_interval clean rounds; new_scale (a float or a 1-element Tensor) sets it."""
        if not self._enabled:
            return
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                new_scale = new_scale.item()
            elif not isinstance(new_scale, float):
                raise AttributeError(f"'{type(new_scale).__name__}' object has no attribute "
                                     f"'device'")
            self._scale = new_scale
        elif self._per_optimizer:
            if any(found for _, found in self._per_optimizer.values()):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        return self._growth_tracker if self._enabled else 0

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])


def is_autocast_available(device_type: str) -> bool:
    """PyTorch answers True for "cpu"; gradjit's CPU autocast would need half precision."""
    return False


class autocast:
    """Mixed precision region: as PyTorch without CUDA, "cuda" warns and runs unchanged;
    an enabled "cpu" region is refused (no float16/bfloat16 tensors here), a disabled one or
    one with another dtype (PyTorch warns and disables) runs unchanged."""

    def __init__(self, device_type: str = "cuda", dtype: DType | None = None,
                 enabled: bool = True, cache_enabled: bool | None = None):
        device_type = _device(device_type).type
        self.device = device_type
        self.fast_dtype = dtype if dtype is not None else (
            bfloat16 if device_type == "cpu" else float16)
        if not enabled:
            self._enabled = False
        elif device_type != "cpu":
            warnings.warn("CUDA is not available or torch_xla is imported. Disabling "
                          "autocast.", UserWarning, stacklevel=2)
            self._enabled = False
        elif self.fast_dtype not in (bfloat16, float16):
            warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling "
                          "autocast.\nCPU Autocast only supports dtypes of torch.bfloat16, "
                          "torch.float16 currently.", UserWarning, stacklevel=2)
            self._enabled = False
        else:
            raise TypeError(f"gradjit has no torch.{self.fast_dtype.name} tensors, so CPU "
                            f"autocast cannot run: use autocast('cpu', enabled=False) or "
                            f"leave it out (gradjit computes in float32)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapped


class CudaGradScaler(GradScaler):
    """torch.cuda.amp.GradScaler: the deprecated spelling of GradScaler("cuda", ...)."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True):
        warnings.warn("`torch.cuda.amp.GradScaler(args...)` is deprecated. Please use "
                      "`torch.amp.GradScaler('cuda', args...)` instead.", FutureWarning,
                      stacklevel=2)
        super().__init__("cuda", init_scale, growth_factor, backoff_factor,
                         growth_interval, enabled)


class CudaAutocast(autocast):
    """torch.cuda.amp.autocast: autocast("cuda", ...), which warns and disables itself."""

    def __init__(self, enabled: bool = True, dtype: DType = float16,
                 cache_enabled: bool = True):
        super().__init__("cuda", dtype, enabled, cache_enabled)
