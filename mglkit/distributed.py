"""The little mglkit itself needs of several processes (``accelerate launch``, ``torchrun``): which
process this is, and a decision the main process takes for all of them."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .errors import MglkitError


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def on_main(decide: Callable[[], Any]) -> Any:
    """Run ``decide`` on the main process and give every process its result; when it raises, every
    process raises the same error (so no process waits forever for a main process that gave up)."""
    if world_size() == 1:
        return decide()
    import torch.distributed as dist

    _join_group()
    shared: list[Any] = [None]
    if is_main():
        try:
            shared[0] = ("ok", decide())
        except MglkitError as exc:
            shared[0] = ("error", (type(exc), str(exc), exc.hint))
            dist.broadcast_object_list(shared, src=0)
            raise
    dist.broadcast_object_list(shared, src=0)
    status, value = shared[0]
    if status == "error":
        kind, message, hint = value
        raise kind(message, hint=hint)
    return value


def _join_group() -> None:
    """The process group the launcher set up (gloo on CPU, NCCL on GPUs); accelerate reuses it."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def join() -> None:
    """Join the launcher's process group when there are several processes (nothing otherwise): the
    collectives below need it, and on GPUs it gives this process its own device."""
    if world_size() > 1:
        _join_group()


def device_map():
    """Where a hub model is loaded on GPUs: spread over all of them for one process, whole on this
    process's own GPU when a launcher started several (each holds a copy)."""
    return {"": local_rank()} if world_size() > 1 else "auto"


def broadcast(value: Any) -> Any:
    """The main process's ``value`` on every process (a picklable object)."""
    if world_size() == 1:
        return value
    import torch.distributed as dist

    _join_group()
    shared = [value if is_main() else None]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def all_gather(value: Any) -> list[Any]:
    """Every process's ``value`` (a picklable object), in rank order."""
    if world_size() == 1:
        return [value]
    import torch.distributed as dist

    _join_group()
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def sum_over_processes(tensor):
    """``tensor`` summed element-wise over every process, in place (on GPUs it must be on this
    process's device). Shares computed apart, zero elsewhere, add up to the whole exactly."""
    if world_size() > 1:
        import torch.distributed as dist

        _join_group()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
