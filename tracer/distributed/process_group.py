"""torch.distributed's process-group calls, as PyTorch answers them in a process that never
joined a group (nanoGPT's train.py imports init_process_group and calls it only under
torchrun). gradjit has no process groups: its multi-process training is gradjit.distributed's
`run` on Ray (docs/distributed.md), so init_process_group under torchrun raises, naming it."""
from __future__ import annotations

import os

from tracer.nn.module import Module

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "get_rank",
           "get_world_size", "barrier", "TorchDistributedDataParallel"]

NO_GROUP = ("Default process group has not been initialized, please make sure to call "
            "init_process_group.")


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """Raises: ValueError without torchrun's RANK (PyTorch's text), RuntimeError with it."""
    if init_method in (None, "env://") and store is None and "RANK" not in os.environ \
            and rank == -1:
        raise ValueError("Error initializing torch.distributed using env:// rendezvous: "
                         "environment variable RANK expected, but not set")
    raise RuntimeError("gradjit does not implement torch.distributed process groups; "
                       "train on several processes with gradjit.distributed.run and its "
                       "DistributedDataParallel (docs/distributed.md)")


def destroy_process_group(group=None):
    raise AssertionError("Process group cannot be None")


def is_initialized() -> bool:
    return False


def get_rank(group=None) -> int:
    raise ValueError(NO_GROUP)


def get_world_size(group=None) -> int:
    raise ValueError(NO_GROUP)


def barrier(group=None, async_op=False, device_ids=None):
    raise ValueError(NO_GROUP)


class TorchDistributedDataParallel(Module):
    """torch.nn.parallel.DistributedDataParallel: needs a process group, so it raises
    PyTorch's ValueError (there is never one here)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0, *args, **kwargs):
        raise ValueError(NO_GROUP)
