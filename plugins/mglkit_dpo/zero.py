"""DeepSpeed ZeRO under the dpo loop: the engine is driven step by step (the loop says where an
optimizer step ends), and mglkit's settings fill the launcher's DeepSpeed config where it says "auto".

On a CPU-only machine (DS_ACCELERATOR=cpu, gloo) accelerate 1.15 would turn DeepSpeed off under
``Accelerator(cpu=True)`` and, without it, count one process on every rank: so mglkit builds the
engine itself, and ranks come from torch.distributed.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os

import torch

from mglkit import ConfigError, distributed

from .engines import UNAPPLIED_DEEPSPEED, Engine, _refuse_unapplied


class DeepSpeed(Engine):
    """DeepSpeed ZeRO: the engine steps when the loop's last micro-batch of a step is through."""

    name = "deepspeed"

    def __init__(self, job):
        super().__init__(job)
        self.config = deepspeed_config(job.config, job.precision, self.num_processes)
        self.stage = int(self.config.get("zero_optimization", {}).get("stage", 0))
        self.checkpoint_format = f"deepspeed-zero{self.stage}"
        self.engine = None

    def autocast(self):
        return contextlib.nullcontext()  # the engine casts the model to the config's precision

    def prepare(self, model, optimizer):
        import deepspeed

        self.engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=self.config)
        self.engine.set_gradient_accumulation_boundary(True)
        return self.engine, optimizer

    def unwrap_model(self, model):
        return getattr(model, "module", model)

    @contextlib.contextmanager
    def no_sync(self, model):
        model.set_gradient_accumulation_boundary(False)
        try:
            yield
        finally:
            model.set_gradient_accumulation_boundary(True)

    def backward(self, loss) -> None:
        self.engine.backward(loss, scale_wrt_gas=False)  # the loop divides by the step's micro-batches

    def step(self, model, optimizer, max_norm: float | None) -> float:
        model.step()  # clips to the config's gradient_clipping, steps, zeroes the gradients
        norm = model.get_global_grad_norm()
        return float(norm) if norm is not None else math.nan

    def optimizer_state(self, model, optimizer) -> dict | None:
        """Every process's partition, gathered by the main process (a LoRA adapter's state is small)."""
        mine = _to_cpu(optimizer.state_dict())
        if self.num_processes == 1:
            return {"partitions": [mine]}
        everyone = [None] * self.num_processes if self.is_main_process else None
        torch.distributed.gather_object(mine, everyone, dst=0)
        return {"partitions": everyone} if self.is_main_process else None

    def load_state(self, model, optimizer, adapter: dict, saved: dict) -> None:
        from peft import set_peft_model_state_dict

        if self.stage < 3:  # under ZeRO-3 the weights come back from the partitions' fp32 copies
            set_peft_model_state_dict(self.unwrap_model(model), adapter)
        optimizer.load_state_dict(saved["partitions"], load_optimizer_states=True, load_from_fp32_weights=True)

    def safe_globals(self) -> list:
        from deepspeed.runtime.fp16.loss_scaler import LossScaler
        from deepspeed.runtime.zero.config import ZeroStageEnum
        from deepspeed.utils.tensor_fragment import fragment_address

        return [LossScaler, ZeroStageEnum, fragment_address]

    def describe(self) -> dict:
        return super().describe() | {"zero_stage": self.stage}

    def stats(self, model) -> dict:
        return super().stats(model) | {"zero_stage": self.stage}


def deepspeed_config(cfg, precision: str, world: int) -> dict:
    """The launcher's DeepSpeed config (its file, or the fields of the accelerate config), with the
    values mglkit's settings decide filled in where it says "auto" or nothing (``precision`` resolved:
    bf16, fp16 or fp32)."""
    _refuse_unapplied(UNAPPLIED_DEEPSPEED)
    distributed.quiet_deepspeed()
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise ConfigError("the launcher asks for DeepSpeed, which is not installed",
                          hint='pip install "mglkit[deepspeed]"') from None  # fmt: skip
    from accelerate.utils import DeepSpeedPlugin

    config = copy.deepcopy(DeepSpeedPlugin().deepspeed_config)
    given = _given(copy.deepcopy(config))
    for section, instead in (("optimizer", "--learning-rate and --weight-decay"),
                             ("scheduler", "--scheduler and --warmup-ratio")):  # fmt: skip
        if section in given:
            raise ConfigError(f"the DeepSpeed config has a {section} section; the dpo trainer makes its own",
                              hint=f"remove it: {instead} decide it")  # fmt: skip
    decided = {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": cfg.batch_size * cfg.grad_accum * world,
        "gradient_clipping": cfg.max_grad_norm or 0.0,
    }
    for key, value in decided.items():
        _fill(config, given, key, value)
    for kind in ("bf16", "fp16"):
        _fill(config.setdefault(kind, {}), given.get(kind, {}), "enabled", precision == kind, f"{kind}.")
    config.setdefault("zero_force_ds_cpu_optimizer", False)  # offloading steps mglkit's AdamW on the CPU
    config["steps_per_print"] = math.inf
    return config


def _given(made: dict) -> dict:
    """What the user's DeepSpeed config file says: accelerate adds entries of its own to it (a
    gradient_accumulation_steps of 1), which must not pass for the user's. Without a file, the
    config accelerate ``made`` from its own fields ("auto" where they were not given)."""
    import json

    path = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none")
    if path == "none":
        return made
    try:
        given = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"deepspeed_config_file {path}: {exc}", hint="give a DeepSpeed JSON config") from None
    if not isinstance(given, dict):
        raise ConfigError(f"deepspeed_config_file {path}: not a JSON object", hint="give a DeepSpeed JSON config")
    return given


def _fill(section: dict, given: dict, key: str, value, where: str = "") -> None:
    said = given.get(key, "auto")
    if said == "auto":
        section[key] = value
    elif said != value:
        raise ConfigError(
            f"the DeepSpeed config sets {where}{key} to {said}; mglkit's settings make it {value}",
            hint='set it to "auto": --batch-size, --grad-accum, --max-grad-norm and --precision decide it',
        )


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value
