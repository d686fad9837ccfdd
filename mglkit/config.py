"""Configuration of each pipeline: dataclasses, read from a TOML file, overridden by flags.

Looked up in order: ``--config FILE``; else ``mglkit.toml`` in the working directory (its
``[validate]`` table); else ``[tool.mglkit.validate]`` in ``pyproject.toml``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass
class ValidationConfig:
    min_words_prompt: int = 5
    min_words_chosen: int = 20
    min_words_rejected: int = 10
    min_cyrillic: float = 0.8  # share of letters that must be Cyrillic, in every field
    # chosen vs rejected at or above this rapidfuzz ratio (0-1, after normalisation) is a warning,
    # unless the two differ in a number (a changed date is a legitimate minimal pair)
    similarity_threshold: float = 0.9
    min_pairs: int = 10  # fewer valid pairs is an error
    recommended_pairs: int = 100  # fewer is a warning
    language_detector: str = "signals"  # or "lingua" (extra: lang)
    strict: bool = False  # warnings count as errors
    fix: bool = False  # repair what is safe to repair before checking
    validators: list[str] | None = None  # None: every registered validator
    options: dict[str, Any] = field(default_factory=dict)  # per-plugin settings, by validator name

    def min_words(self, name: str) -> int:
        return getattr(self, f"min_words_{name}")


def _coerce(cls, table: dict[str, Any], source: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise ConfigError(
                f"{source}: unknown setting '{key}'",
                hint="known settings: " + ", ".join(sorted(fields)),
            )
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def find_table(section: str, config_file: str | os.PathLike | None = None) -> tuple[dict, str]:
    """The ``section`` table of the config file in force, and where it came from."""
    if config_file is not None:
        path = Path(config_file)
        data = _read_toml(path)
        return data.get(section, data.get("tool", {}).get("mglkit", {}).get(section, {})), str(path)
    local = Path("mglkit.toml")
    if local.is_file():
        return _read_toml(local).get(section, {}), str(local)
    pyproject = Path("pyproject.toml")
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("mglkit", {}).get(section)
        if table is not None:
            return table, f"{pyproject} [tool.mglkit.{section}]"
    return {}, "defaults"


def load_validation_config(config_file: str | os.PathLike | None = None, **overrides: Any) -> ValidationConfig:
    table, source = find_table("validate", config_file)
    config = _coerce(ValidationConfig, table, source)
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class TrainConfig:
    """Every option of ``mglkit train``; defaults are the original guide's where it had one."""

    base: str = "mistralai/Mistral-7B-Instruct-v0.2"
    dataset: str = "data/mgl_history_grpo.jsonl"
    output: str = "models/mgl_history_grpo_adapter"
    trainer: str = "trl-dpo"
    batch_size: int = 4  # per device
    learning_rate: float = 5e-6
    epochs: float = 2
    max_length: int = 512
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target: str = "q_proj,k_proj,v_proj,o_proj"  # or all-linear
    grad_accum: int = 8
    beta: float = 0.1
    loss: str = "sigmoid"  # sigmoid, ipo, hinge, robust
    label_smoothing: float = 0.0  # robust DPO's label-flip probability
    warmup_ratio: float = 0.1
    scheduler: str = "cosine"  # any transformers scheduler name
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_split: float = 0.1  # 0 turns evaluation off
    eval_steps: int | None = None  # None: at the end of each epoch
    save_steps: int | None = None  # None: at the end of each epoch
    max_steps: int = -1  # optimizer steps; -1: from epochs
    seed: int = 42
    gradient_checkpointing: bool = False
    compile: bool = False
    resume: str | None = None
    report_to: list[str] = field(default_factory=list)  # jsonl and terminal always; wandb, tensorboard
    dry_run: bool = False
    precision: str = "auto"  # auto, fp32, fp16, bf16
    quantize: str | None = None  # 4bit
    chat_template: bool = True
    trust_remote_code: bool = False
    keep_dropout: bool = False
    precompute_ref: bool = True
    group_by_length: bool = False
    skip_validation: bool = False
    logging_steps: int = 1
    samples: int = 8  # sample generations written at the end
    max_new_tokens: int = 96
    eval_suite: str | None = None  # evaluate base vs the trained adapter on this suite at the end
    # GRPO (trl-grpo)
    num_generations: int = 4  # completions sampled per prompt (the group)
    temperature: float = 1.0
    kl_coef: float = 0.04  # GRPO's KL coefficient (DPO's --beta is another thing)
    # comma-separated; default by data: facts,mongolian,length or preference,mongolian,length
    rewards: str | None = None
    reward_weights: str | dict | None = None  # "facts=1,length=0.5", or a TOML table
    length_band: str = "20,80"  # words for the length reward

    def lora_targets(self) -> list[str] | str:
        if self.lora_target == "all-linear":
            return "all-linear"
        return [t.strip() for t in self.lora_target.split(",") if t.strip()]


def load_train_config(config_file: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
    """``[train]`` of the config file (if any), then the flags given on the command line."""
    table, source = find_table("train", config_file)
    config = _coerce(TrainConfig, table, source)
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
