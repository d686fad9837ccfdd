"""What a sharded model needs from mglkit, whichever trainer sharded it: its LoRA adapter gathered
whole, and the parameter bytes each process holds (the proof that it is sharded).

FSDP2 parameters are DTensors (``full_tensor`` gathers one); DeepSpeed ZeRO-3 parameters are
gathered inside ``deepspeed.zero.GatheredParameters``; anything else is whole already. Every process
calls these functions together: each one is a collective under sharding.
"""

from __future__ import annotations

import contextlib

from . import distributed


def full_adapter(model) -> dict:
    """The adapter's tensors in PEFT's form (``get_peft_model_state_dict``), whole, on the CPU, on
    every process."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, state_dict=whole_trainable(model))


def whole_trainable(model) -> dict:
    """The trainable tensors by parameter name (the model's own form), whole, on the CPU."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    with _gathered([p for _, p in named]):
        return {name: _whole(p).detach().cpu().clone() for name, p in named}


def is_sharded(model) -> bool:
    """Whether some parameter lives in pieces across the processes (FSDP, ZeRO-3)."""
    return any(_kind(p) != "whole" for p in model.parameters())


def local_parameter_bytes(model) -> int:
    """Bytes of parameters this process holds."""
    total = 0
    for p in model.parameters():
        kind = _kind(p)
        local = p.to_local() if kind == "dtensor" else p.ds_tensor if kind == "zero3" else p
        total += local.numel() * local.element_size()
    return total


def parameter_bytes_per_process(model) -> list[int]:
    """Every process's parameter bytes, in rank order (a collective when there are several)."""
    return distributed.all_gather(local_parameter_bytes(model))


def _kind(p) -> str:
    if hasattr(p, "ds_tensor"):
        return "zero3"
    from torch.distributed.tensor import DTensor

    return "dtensor" if isinstance(p, DTensor) else "whole"


def _whole(p):
    return p.full_tensor() if _kind(p) == "dtensor" else p


def _gathered(params):
    if any(_kind(p) == "zero3" for p in params):
        import deepspeed

        return deepspeed.zero.GatheredParameters(params)
    return contextlib.nullcontext()
