"""``trl-dpo`` and ``trl-grpo``: TRL's DPOTrainer and GRPOTrainer with LoRA, mapped from mglkit's settings."""

from mglkit import ConfigError, Setting, Trainer, distributed, hookimpl
from mglkit.preference import dpo_settings

# TRL 1.16's preference losses (its "sft" is not one)
LOSSES = (
    "sigmoid",
    "ipo",
    "hinge",
    "robust",
    "exo_pair",
    "nca_pair",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
)
SMOOTHED = ("robust", "exo_pair", "aot", "aot_unpaired")  # the losses that read label_smoothing


def check_engine(trainer: str) -> None:
    """accelerate applies FSDP and DeepSpeed to TRL's trainers on GPUs only; on CPU it would quietly
    run DDP (or unconnected processes) instead."""
    import torch

    asked = distributed.requested_engine()
    if asked in ("fsdp", "deepspeed") and not torch.cuda.is_available():
        distributed.check_engine(asked, "ddp", trainer, why="accelerate applies it on GPUs only")


class TRLDPOTrainer(Trainer):
    name = "trl-dpo"
    description = "TRL's DPOTrainer (keep-start truncation, TRL's metrics)"
    method = "DPO"
    inputs = "pairs"
    truncation = "keep-start"  # TRL 1.16 keeps the start of prompt + completion
    settings = tuple(dpo_settings(LOSSES))

    def check(self, options, config) -> None:
        if options.label_smoothing and options.loss not in SMOOTHED:
            raise ConfigError(
                f"--label-smoothing applies to the {', '.join(SMOOTHED)} losses, not '{options.loss}'",
                hint="choose one of those with --loss, or drop --label-smoothing",
            )
        if options.loss == "exo_pair" and not options.label_smoothing:
            raise ConfigError("--loss exo_pair needs --label-smoothing > 0", hint="the EXO paper recommends 1e-3")
        check_engine(self.name)

    def describe(self, options) -> str:
        return f"DPO, {options.loss} loss, beta {options.beta:g}"

    def train(self, job):
        from .trainer import train

        return train(job)


class TRLGRPOTrainer(Trainer):
    name = "trl-grpo"
    description = "TRL's GRPOTrainer: groups of sampled answers scored by reward plugins"
    method = "GRPO"
    inputs = "prompts"  # from a pair file or a facts file
    settings = (
        Setting("num_generations", int, 4, "Answers sampled per prompt (the group).", min=2),
        Setting("temperature", float, 1.0, "Sampling temperature.", min=0, min_open=True),
        Setting("kl_coef", float, 0.04, "The KL coefficient (DPO's --beta is another thing).", min=0),
        Setting(
            "rewards",
            list,
            None,
            "Reward plugins (default: facts,mongolian,length for a facts file, preference,mongolian,length for pairs).",
            optional=True,
        ),
        Setting("reward_weights", dict, None, "Reward weights: name=weight,... (default 1 each).", optional=True),
        Setting("length_band", str, "20,80", "The words the length reward wants, LOW,HIGH."),
    )

    def check(self, options, config) -> None:
        from .grpo import check_options

        check_options(options)
        check_engine(self.name)

    def describe(self, options) -> str:
        rewards = ",".join(options.rewards) if options.rewards else "by data"
        return (
            f"GRPO, rewards {rewards}, {options.num_generations} answers per prompt, KL coefficient {options.kl_coef:g}"
        )

    def prompt_records(self, data, options, config):
        from .grpo import prompt_records

        return prompt_records(data, config)

    def train(self, job):
        from .grpo import train

        return train(job)


@hookimpl
def register_trainers(register):
    register(TRLDPOTrainer())
    register(TRLGRPOTrainer())
