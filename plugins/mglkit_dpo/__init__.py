"""``dpo``: mglkit's own DPO loop — plain PyTorch and accelerate, readable top to bottom."""

from mglkit import hookimpl


class DPOTrainer:
    name = "dpo"
    description = "mglkit's own loop: precomputed reference log-probs, one forward for chosen+rejected"

    def train(self, job):
        from .loop import train

        return train(job)


@hookimpl
def register_trainers(register):
    register(DPOTrainer())
