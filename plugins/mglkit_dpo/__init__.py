"""``dpo``: mglkit's own DPO loop — plain PyTorch and accelerate, readable top to bottom."""

from mglkit import ConfigError, Setting, Trainer, hookimpl
from mglkit.preference import dpo_settings

from .losses import LOSSES


class DPOTrainer(Trainer):
    name = "dpo"
    description = "mglkit's own loop: precomputed reference log-probs, one forward for chosen and rejected"
    method = "DPO"
    inputs = "pairs"
    truncation = "prompt-left"
    settings = (
        *dpo_settings(LOSSES),
        Setting("group_by_length", bool, False, "Batch pairs of similar length together (less padding)."),
        Setting(
            "padding_free",
            bool,
            False,
            "Pack a batch's sequences into rows without padding (attention confined to each), when fewer positions.",
        ),
    )

    def check(self, options, config) -> None:
        if options.label_smoothing and options.loss != "robust":
            raise ConfigError(
                f"--label-smoothing applies to the robust loss, not to '{options.loss}'",
                hint="add --loss robust, or drop --label-smoothing",
            )
        from .engines import check

        check(config)

    def check_resume(self, checkpoint, options, config) -> None:
        from .checkpoints import check_engine
        from .engines import check

        check_engine(checkpoint, check(config))

    def describe(self, options) -> str:
        return f"DPO, {options.loss} loss, beta {options.beta:g}"

    def train(self, job):
        from .loop import train

        return train(job)


@hookimpl
def register_trainers(register):
    register(DPOTrainer())
