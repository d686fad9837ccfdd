"""Each pipeline's settings, declared once (type, default, range, help): the flags of its command
and the checks of its config-file table are made from these fields. Plugins declare theirs as
``Setting`` objects (a trainer's ``settings``); their values travel in ``TrainConfig.options``.

Config files: ``--config FILE``, else ``mglkit.toml`` in the working directory, else
``[tool.mglkit.<section>]`` in ``pyproject.toml``; flags override the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .pairs import PAIR_FIELDS
from .settings import Setting, check_config, checked_table, declared, find_table, setting
from .sources import columns_check

FACT_FIELDS = ("question", "choices", "answer", "aliases")  # GRPO's prompts may come from a facts file
SPLIT_HELP = "The split of a dataset that has several (hf:, a save_to_disk folder)."
SUBSET_HELP = "The subset (configuration) of an hf: dataset."
COLUMNS_HELP = "Columns that hold the record's fields: prompt=question,chosen=good,rejected=bad."

DEFAULT_BASE = "mistralai/Mistral-7B-Instruct-v0.2"
DEFAULT_DATASET = "data/mgl_history_grpo.jsonl"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass
class ValidationConfig:
    """Thresholds and switches of ``mglkit validate`` (table ``[validate]``)."""

    min_words_prompt: int = setting(int, 5, "Fewer words in a prompt is an error.", min=0)
    min_words_chosen: int = setting(int, 20, "Fewer words in a chosen answer is an error.", min=0)
    min_words_rejected: int = setting(int, 10, "Fewer words in a rejected answer is an error.", min=0)
    min_cyrillic: float = setting(float, 0.8, "Share of letters that must be Cyrillic, in every field.", min=0, max=1)
    similarity_threshold: float = setting(
        float, 0.9, "Chosen vs rejected this similar (0-1) is a warning, unless a number differs.", min=0, max=1
    )
    min_pairs: int = setting(int, 10, "Fewer valid pairs is an error.", min=0)
    recommended_pairs: int = setting(int, 100, "Fewer valid pairs is a warning.", min=0)
    language_detector: str = setting(
        str, "signals", "signals (fast, explainable) or lingua (extra: lang).", choices=("signals", "lingua")
    )
    strict: bool = setting(bool, False, "Treat warnings as errors.")
    fix: bool = setting(bool, False, "Repair invisible characters, Latin look-alikes, NFC and whitespace first.")
    validators: list[str] | None = setting(list, None, "Validator names to run (default: all).", optional=True)
    jobs: int = setting(int, 1, "Worker processes for per-record checks.", min=1, flag="--jobs")
    split: str | None = setting(str, None, SPLIT_HELP, optional=True)
    subset: str | None = setting(str, None, SUBSET_HELP, optional=True)
    columns: str | None = setting(str, None, COLUMNS_HELP, optional=True, check_value=columns_check(PAIR_FIELDS))
    out_format: str = setting(
        str, "jsonl", "Clean records as JSONL, or in the input file's format (input).", choices=("jsonl", "input")
    )
    # a table of settings per plugin validator, by validator name (config files only)
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_config(self)

    def min_words(self, name: str) -> int:
        return getattr(self, f"min_words_{name}")


@dataclass
class TrainConfig:
    """Every core option of ``mglkit train`` (table ``[train]``); defaults are the original guide's
    where it had one. A trainer's own settings (DPO's beta, GRPO's group size...) are in ``options``."""

    base: str = setting(
        str, DEFAULT_BASE, "Base model: a hub id, a local folder, or a model source such as mglkit:tiny."
    )
    dataset: str = setting(
        str, DEFAULT_DATASET, "Training data: a file, a folder, a bundled name, or hf:ORG/NAME (see README)."
    )
    split: str | None = setting(str, None, SPLIT_HELP, optional=True)
    subset: str | None = setting(str, None, SUBSET_HELP, optional=True)
    columns: str | None = setting(
        str, None, COLUMNS_HELP, optional=True, check_value=columns_check(PAIR_FIELDS + FACT_FIELDS)
    )
    output: str = setting(str, "models/mgl_history_grpo_adapter", "The run folder.")
    trainer: str = setting(str, "trl-dpo", "A registered trainer (see mglkit plugins).")
    batch_size: int = setting(int, 4, "Pairs per device and micro-batch.", min=1)
    learning_rate: float = setting(
        float, 5e-6, "Peak learning rate (5e-6 suits 7B models; a tiny one wants 5e-4).", min=0, min_open=True
    )
    epochs: float = setting(float, 2, "Passes over the training split.", min=0, min_open=True)
    max_length: int = setting(int, 512, "Tokens of prompt + answer; longer pairs are truncated.", min=2)
    lora_r: int = setting(int, 16, "LoRA rank.", min=1)
    lora_alpha: int = setting(int, 32, "LoRA scaling numerator (scale = alpha / r).", min=1)
    lora_dropout: float = setting(float, 0.05, "Dropout on the LoRA input.", min=0, max=1, max_open=True)
    lora_target: str = setting(str, "q_proj,k_proj,v_proj,o_proj", "Module names, comma-separated, or all-linear.")
    grad_accum: int = setting(int, 8, "Micro-batches per optimizer step.", min=1)
    warmup_ratio: float = setting(float, 0.1, "Share of the steps spent warming up.", min=0, max=1, max_open=True)
    scheduler: str = setting(str, "cosine", "Any transformers scheduler name (cosine, linear, constant...).")
    weight_decay: float = setting(float, 0.0, "AdamW weight decay.", min=0)
    max_grad_norm: float | None = setting(
        float,
        1.0,
        "Gradient clipping norm; 'none' turns clipping off.",
        min=0,
        min_open=True,
        optional=True,
        none_word="none",
    )
    eval_split: float = setting(
        float, 0.1, "Share of pairs held out for evaluation; 0 turns it off.", min=0, max=1, max_open=True
    )
    eval_steps: int | None = setting(
        int, None, "Evaluate every N optimizer steps (default: every epoch).", min=1, optional=True
    )
    save_steps: int | None = setting(
        int, None, "Checkpoint every N optimizer steps (default: every epoch).", min=1, optional=True
    )
    max_steps: int | None = setting(int, None, "Optimizer steps; overrides --epochs.", min=1, optional=True)
    seed: int = setting(int, 42, "Seed of the split, the LoRA initialisation and the data order.", min=0)
    precision: str = setting(
        str, "auto", "auto: bf16 where supported, else fp16 on GPU, fp32 on CPU.", choices=PRECISIONS
    )
    quantize: str | None = setting(str, None, "QLoRA through bitsandbytes (CUDA).", choices=("4bit",), optional=True)
    gradient_checkpointing: bool = setting(bool, False, "Recompute activations in the backward pass.")
    compile: bool = setting(bool, False, "torch.compile the model.")
    chat_template: bool = setting(bool, True, "Apply the tokenizer's chat template to prompts.")
    keep_dropout: bool = setting(bool, False, "Keep the model's dropout (both trainers disable it, as TRL does).")
    trust_remote_code: bool = setting(bool, False, "Run the model folder's own Python code.", in_file=False)
    skip_validation: bool = setting(bool, False, "Train without validating the data first.")
    logging_steps: int = setting(int, 1, "Log metrics every N optimizer steps.", min=1)
    report_to: list[str] = setting(
        list,
        [],
        "Extra metrics sinks (JSONL and the terminal always).",
        choices=("wandb", "tensorboard"),
        multiple=True,
    )
    samples: int = setting(int, 8, "Sample generations written at the end.", min=0)
    plots: bool = setting(bool, True, "PNGs of the training curves in training_logs/plots/ (extra: report).")
    max_new_tokens: int = setting(int, 96, "Tokens of each sample generation (GRPO: of each completion).", min=1)
    eval_suite: str | None = setting(
        str, None, "At the end, evaluate base vs adapter on this suite.", optional=True, flag="--eval"
    )
    resume: str | None = setting(
        str,
        None,
        "Continue a run from its last checkpoint (default: the --output folder).",
        optional=True,
        bare_value="auto",
    )
    dry_run: bool = setting(bool, False, "Validate and print the plan; train nothing.")
    # the trainers' own settings, by name (checked against the chosen trainer's declarations)
    options: dict[str, Any] = field(default_factory=dict)
    # which config file chose each setting that came from one (the run says so)
    origin: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_config(self)

    def lora_targets(self) -> list[str] | str:
        if self.lora_target == "all-linear":
            return "all-linear"
        return [t.strip() for t in self.lora_target.split(",") if t.strip()]


@dataclass
class EvalConfig:
    """What ``mglkit eval`` scores and how (table ``[eval]``)."""

    suites: list[str] = setting(list, ["benchmarks"], "Suites: registered names, folders, or PREFIX:PATH.", cli=False)
    base: str = setting(str, DEFAULT_BASE, "Base model.")
    adapters: list[str] = setting(
        list, [], "A run or adapter folder; repeat for several columns.", flag="--adapter", multiple=True
    )
    evaluators: list[str] | None = setting(list, None, "Evaluator names (default: all that apply).", optional=True)
    limit: int | None = setting(int, None, "At most N items of each suite file.", min=1, optional=True)
    seed: int = setting(int, 0, "Bootstrap seed.", min=0)
    max_new_tokens: int = setting(int, 32, "Length of generated answers.", min=1)
    train_data: list[str] = setting(
        list,
        [],
        "Training data (pairs in any data format, or facts or a corpus as JSONL): warns about each suite item it "
        "states and splits metrics into seen / unseen by it; repeat for several.",
        multiple=True,
    )
    precision: str = setting(
        str, "auto", "auto: bf16 where supported, else fp16 on GPU, fp32 on CPU.", choices=PRECISIONS
    )
    batch_size: int = setting(int, 16, "Sequences per forward pass.", min=1)

    def __post_init__(self) -> None:
        check_config(self)


def load_config(config_class, config_file=None, option_specs: dict[str, Setting] | None = None, **overrides: Any):
    """A config from the table in force (see ``settings.find_table``), then the given overrides (None
    means not given). ``option_specs`` declares the plugins' settings that may sit beside the core ones
    (a trainer's ``beta``...): they are checked here and gathered in ``options``."""
    table, source = find_table(_SECTIONS[config_class], config_file)
    table = dict(table)
    nested = table.pop("options", {}) if "options" in _plain_fields(config_class) else {}
    if not isinstance(nested, dict):
        raise ConfigError(f"{source}, key 'options': expected a table")
    core = declared(config_class)
    values = checked_table(core + list((option_specs or {}).values()), table, source)
    names = {spec.name for spec in core}
    options = {**nested, **{k: v for k, v in values.items() if k not in names}}
    values = {k: v for k, v in values.items() if k in names}
    given = {k: v for k, v in overrides.items() if v is not None}
    options.update(given.pop("options", {}))
    config = config_class(**{**values, **given}, **({"options": options} if options else {}))
    if "origin" in _plain_fields(config_class):
        config.origin = {name: source for name in values if name not in given}
    return config


def _plain_fields(config_class) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class) if "setting" not in f.metadata}


def trainer_option_specs(trainers) -> dict[str, Setting]:
    """The settings the installed trainers declare, merged by name, each help naming its trainers: the
    union of choices where two trainers declare one setting (each checks its own when it runs)."""
    merged: dict[str, Setting] = {}
    owners: dict[str, list[str]] = {}
    for trainer in trainers:
        for spec in trainer.settings:
            known = merged.get(spec.name)
            if known is not None and known.choices and spec.choices:
                spec = dataclasses.replace(spec, choices=tuple(dict.fromkeys(known.choices + spec.choices)))
            merged[spec.name] = spec
            owners.setdefault(spec.name, []).append(trainer.name)
    return {
        name: dataclasses.replace(spec, help=f"{spec.help} ({', '.join(owners[name])})")
        for name, spec in merged.items()
    }


_SECTIONS = {ValidationConfig: "validate", TrainConfig: "train", EvalConfig: "eval"}
