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
