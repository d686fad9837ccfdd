"""``trl-dpo``: TRL's DPOTrainer with a LoRA config, mapped from mglkit's training config."""

from mglkit import hookimpl


class TRLDPOTrainer:
    name = "trl-dpo"
    description = "TRL's DPOTrainer (keep-start truncation, TRL's metrics)"
    truncation = "keep-start"  # TRL 1.16 keeps the start of prompt + completion

    def train(self, job):
        from .trainer import train

        return train(job)


class TRLGRPOTrainer:
    name = "trl-grpo"
    description = "TRL's GRPOTrainer: groups of sampled answers scored by reward plugins"
    inputs = "prompts"  # prompts (and their records) from a pair file or a facts file, not pairs

    def train(self, job):
        from .grpo import train

        return train(job)


@hookimpl
def register_trainers(register):
    register(TRLDPOTrainer())
    register(TRLGRPOTrainer())
