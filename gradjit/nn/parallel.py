"""torch.nn.parallel for gradjit: `DataParallel` as PyTorch runs it on a machine without
GPUs (no device ids; `forward` calls the wrapped module), and `data_parallel`, which, as in
PyTorch on such a machine, cannot find a device type; `DistributedDataParallel`, which
without a process group raises PyTorch's ValueError. Programs reach them through
device-agnostic code (pytorch/examples dcgan wraps its models when `ngpu > 1` on a GPU)."""
from tracer.distributed.process_group import (
    TorchDistributedDataParallel as DistributedDataParallel)
from tracer.nn import Module

from gradjit._missing import missing_names

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]


class DataParallel(Module):
    """Wraps `module` (its parameters are named `module.<name>`); with no GPU to split the
    batch over, `forward` calls it with the same arguments.

    Raises:
        ValueError: device_ids or output_device names a device (there is none).
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        if device_ids or output_device is not None:
            raise ValueError("gradjit runs on the CPU: DataParallel takes no device_ids or "
                             "output_device")
        self.module = module
        self.device_ids = []
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0,
                  module_kwargs=None):
    """Raises RuntimeError, as PyTorch's does without an accelerator."""
    raise RuntimeError("device type could not be determined")


__getattr__ = missing_names("torch.nn.parallel", __name__)
