"""The engines the dpo loop runs on, behind the part of accelerate's interface the loop uses (the
loop calls its engine ``accelerator``):

- ``none`` and ``ddp``: accelerate's Accelerator (one process; DistributedDataParallel).
- ``fsdp``: FSDP2 applied here: ``fully_shard`` on each decoder layer, then on the whole model, on
  CPU (gloo) as on GPUs. accelerate 1.15 ignores its FSDP plugin on CPU, and one path is the tested one.
- ``deepspeed``: DeepSpeed ZeRO (the stage from the launcher's config), its engine driven step by
  step: the loop says where an optimizer step ends; mglkit's batch size, accumulation, clipping and
  precision fill the config's "auto" values, and a value that contradicts them is an error.

The launcher's config chooses (``accelerate launch --config_file examples/accelerate/...``). An engine
asked for that cannot run as asked is an error, never a quiet fallback to another.
"""

from __future__ import annotations

import contextlib
import math
import os

import torch

from mglkit import ConfigError, distributed, sharding


def check(config) -> dict:
    """The engine the launcher asks for can run these settings (before anything is written); what its
    checkpoints record (``Engine.describe``)."""
    asked, world = distributed.requested_engine(), distributed.world_size()
    if asked == "fsdp":
        FSDP.check(config)
    if asked == "deepspeed":
        from .zero import deepspeed_config

        ds = deepspeed_config(config, distributed.resolved_precision(config.precision), world)
        stage = int(ds.get("zero_optimization", {}).get("stage", 0))
        return {"engine": asked, "format": f"deepspeed-zero{stage}", "world_size": world, "zero_stage": stage}
    return {"engine": asked, "format": "fsdp" if asked == "fsdp" else "plain", "world_size": world}


def start(job) -> Engine:
    asked = distributed.requested_engine()
    if asked == "fsdp":
        distributed.join_group()
        return FSDP(job)
    if asked == "deepspeed":
        from .zero import DeepSpeed

        distributed.join_group()
        return DeepSpeed(job)
    return Accelerate(job)


class Engine:
    """What every engine offers the loop; the defaults are those of plain PyTorch over torch.distributed."""

    name = "none"
    checkpoint_format = "plain"  # checkpoints resume under an engine of the same format

    def __init__(self, job):
        self.job = job
        cuda = job.device == "cuda"
        self.device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device(job.device)

    @property
    def num_processes(self) -> int:
        return distributed.world_size()

    @property
    def process_index(self) -> int:
        return distributed.rank()

    @property
    def is_main_process(self) -> bool:
        return distributed.is_main()

    def autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.job.precision)
        return torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()

    def gather(self, tensor):
        """Every process's tensor, concatenated in rank order (a number becomes one row each)."""
        tensor = tensor[None] if tensor.dim() == 0 else tensor
        if self.num_processes == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.num_processes)]
        torch.distributed.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def reduce(self, tensor, reduction: str = "sum"):
        if self.num_processes == 1:
            return tensor
        total = tensor.clone()
        torch.distributed.all_reduce(total)
        return total / self.num_processes if reduction == "mean" else total

    def wait_for_everyone(self) -> None:
        if self.num_processes > 1:
            torch.distributed.barrier()

    def unwrap_model(self, model):
        return model

    def shard(self, model):
        return model

    def prepare(self, model, optimizer):
        return model, optimizer

    def no_sync(self, model):
        return contextlib.nullcontext()

    def backward(self, loss) -> None:
        loss.backward()

    def step(self, model, optimizer, max_norm: float | None) -> float:
        """Clip (when asked) and step; the gradient norm before clipping."""
        trainable = [p for p in model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(trainable, max_norm or math.inf)
        optimizer.step()
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    def trainable_state(self, model) -> dict:
        """The adapter by parameter name, whole (a collective under sharding)."""
        return sharding.whole_trainable(self.unwrap_model(model))

    def adapter_state(self, model) -> dict:
        """The adapter in PEFT's form, whole (a collective under sharding)."""
        return sharding.full_adapter(self.unwrap_model(model))

    def optimizer_state(self, model, optimizer) -> dict | None:
        """The optimizer's state as the main process saves it (a collective under sharding)."""
        return optimizer.state_dict() if self.is_main_process else None

    def load_state(self, model, optimizer, adapter: dict, saved: dict) -> None:
        """Every process: the adapter (PEFT's form) and the optimizer state of a checkpoint."""
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(self.unwrap_model(model), adapter)
        optimizer.load_state_dict(saved)

    def safe_globals(self) -> list:
        """Classes a checkpoint's optimizer state may hold besides tensors (loaded with weights_only)."""
        return []

    def describe(self) -> dict:
        """What a checkpoint records, to resume under the same engine."""
        return {"engine": self.name, "format": self.checkpoint_format, "world_size": self.num_processes}

    def stats(self, model) -> dict:
        """training_stats.json's engine keys (a collective: every process's parameter bytes)."""
        return {
            "engine": self.name,
            "world_size": self.num_processes,
            "parameter_bytes_per_process": sharding.parameter_bytes_per_process(self.unwrap_model(model)),
        }


class Accelerate(Engine):
    """accelerate's Accelerator: one process, or DistributedDataParallel over several."""

    def __init__(self, job):
        from accelerate import Accelerator

        super().__init__(job)
        precision = {"fp32": "no", "fp16": "fp16", "bf16": "bf16"}[job.precision]
        self.accelerator = Accelerator(mixed_precision=precision, cpu=job.device == "cpu")
        self.device = self.accelerator.device
        if self.accelerator.num_processes != distributed.world_size():  # processes that did not connect
            raise ConfigError(
                f"accelerate sees {self.accelerator.num_processes} processes, the launcher started "
                f"{distributed.world_size()}",
                hint="launch with accelerate launch --multi_gpu (or a config of examples/accelerate/), or torchrun",
            )
        self.name = "ddp" if self.accelerator.num_processes > 1 else "none"

    def autocast(self):
        return self.accelerator.autocast()

    def gather(self, tensor):
        return self.accelerator.gather(tensor)

    def reduce(self, tensor, reduction: str = "sum"):
        return self.accelerator.reduce(tensor, reduction=reduction)

    def wait_for_everyone(self) -> None:
        self.accelerator.wait_for_everyone()

    def unwrap_model(self, model):
        return self.accelerator.unwrap_model(model)

    def prepare(self, model, optimizer):
        return self.accelerator.prepare(model, optimizer)

    def no_sync(self, model):
        return self.accelerator.no_sync(model)

    def backward(self, loss) -> None:
        self.accelerator.backward(loss)

    def step(self, model, optimizer, max_norm: float | None) -> float:
        norm = self.accelerator.clip_grad_norm_(model.parameters(), max_norm or math.inf)
        optimizer.step()
        return float(norm)


class FSDP(Engine):
    """FSDP2: each decoder layer a unit of its own, the rest (embeddings, head) the root's."""

    name = checkpoint_format = "fsdp"

    def __init__(self, job):
        super().__init__(job)
        self.reshard = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() != "false"
        self.offload = os.environ.get("FSDP_OFFLOAD_PARAMS", "false").lower() == "true"
        self.layer_classes = {c.strip() for c in os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").split(",") if c}

    @staticmethod
    def check(config) -> None:
        _refuse_unapplied(UNAPPLIED_FSDP)
        reshard = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true")
        if reshard.lower() not in ("true", "false"):
            raise ConfigError(f"fsdp_reshard_after_forward is {reshard}; FSDP2 takes true or false",
                              hint="true frees each layer after its forward (less memory), false keeps it")  # fmt: skip
        version = os.environ.get("FSDP_VERSION", "1")
        policy = os.environ.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP")
        if version != "2":
            raise ConfigError(f"the dpo trainer runs FSDP2; the config asks for fsdp_version {version}",
                              hint="set fsdp_version: 2 (as examples/accelerate/fsdp.yaml does)")  # fmt: skip
        if policy != "TRANSFORMER_BASED_WRAP":
            raise ConfigError(f"the dpo trainer shards per decoder layer; the config asks for {policy}",
                              hint="set fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP")  # fmt: skip
        _no_fp16(distributed.resolved_precision(config.precision))

    def shard(self, model):
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

        mesh = init_device_mesh(self.device.type, (self.num_processes,))
        options = {"mesh": mesh, "reshard_after_forward": self.reshard}
        if self.offload:
            options["offload_policy"] = CPUOffloadPolicy()
        blocks = decoder_layers(model, self.layer_classes)
        for block in blocks:
            fully_shard(block, **options)
        fully_shard(model, **options)
        return model

    @contextlib.contextmanager
    def no_sync(self, model):
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)

    def optimizer_state(self, model, optimizer) -> dict | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_optimizer_state_dict(model, optimizer, options=options)
        return state if self.is_main_process else None

    def load_state(self, model, optimizer, adapter: dict, saved: dict) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        by_peft_name = {name.replace(".default", ""): name for name in self.trainable_names(model)}
        whole = {by_peft_name[key]: value for key, value in adapter.items()}
        set_model_state_dict(model, whole, options=StateDictOptions(full_state_dict=True, strict=False))
        set_optimizer_state_dict(model, optimizer, saved, options=StateDictOptions(full_state_dict=True))

    @staticmethod
    def trainable_names(model) -> list[str]:
        return [name for name, p in model.named_parameters() if p.requires_grad]


# accelerate config entries the dpo trainer does not apply (their variables as `accelerate launch` sets
# them), with what to use instead: refused rather than quietly ignored
UNAPPLIED_FSDP = {
    "FSDP_ACTIVATION_CHECKPOINTING": ("fsdp_activation_checkpointing", "use --gradient-checkpointing"),
    "FSDP_CPU_RAM_EFFICIENT_LOADING": ("fsdp_cpu_ram_efficient_loading", "every process loads the whole base"),
}
UNAPPLIED_DEEPSPEED = {
    "ACCELERATE_DEEPSPEED_ZERO3_INIT": ("zero3_init_flag", "every process loads the whole base, then ZeRO-3 shards it"),
}


def _refuse_unapplied(entries: dict) -> None:
    for variable, (entry, instead) in entries.items():
        if os.environ.get(variable, "false").lower() == "true":
            raise ConfigError(f"the accelerate config sets {entry}, which the dpo trainer does not apply",
                              hint=f"set it to false ({instead})")  # fmt: skip


def _no_fp16(precision: str) -> None:
    if precision == "fp16":
        raise ConfigError("fp16 is not supported under FSDP (its gradients would need a sharded scaler)",
                          hint="use --precision bf16 (or fp32)")  # fmt: skip


def decoder_layers(model, names: set[str]) -> list:
    """The decoder layers: modules of the classes the config names, else the model's own
    ``_no_split_modules`` (the blocks transformers never splits across devices)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = names or set(getattr(base, "_no_split_modules", None) or ())
    # by class and its bases: fully_shard gives a sharded layer a subclass of its own (FSDPMistralDecoderLayer)
    layers = [m for m in model.modules() if names & {c.__name__ for c in type(m).__mro__}]
    if not layers:
        raise ConfigError(
            f"no decoder layer to shard in {type(base).__name__} (looked for {', '.join(sorted(names)) or 'nothing'})",
            hint="name the layer class with fsdp_transformer_layer_cls_to_wrap in the accelerate config",
        )
    return layers
