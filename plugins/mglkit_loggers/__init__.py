"""Metrics sinks for training runs, through the ``log_metrics`` hook: Weights & Biases and
TensorBoard when a run asks for them (--report-to). mglkit itself writes metrics.jsonl."""

from mglkit import ConfigError, hookimpl


@hookimpl
def log_metrics(run, step, metrics):
    if "wandb" in run.report_to:
        _wandb(run).log(metrics, step=step)
    if "tensorboard" in run.report_to:
        writer = _tensorboard(run)
        for key, value in metrics.items():
            writer.add_scalar(key, value, step)
        writer.flush()


def _wandb(run):
    if "wandb" not in run.sinks:
        try:
            import wandb
        except ImportError:
            raise ConfigError("--report-to wandb needs wandb", hint="pip install wandb") from None
        run.sinks["wandb"] = wandb.init(project="mglkit", name=run.dir.name, config=vars(run.config), dir=run.logs)
    return run.sinks["wandb"]


def _tensorboard(run):
    if "tensorboard" not in run.sinks:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--report-to tensorboard needs tensorboard", hint="pip install tensorboard") from None
        run.sinks["tensorboard"] = SummaryWriter(log_dir=str(run.logs / "tensorboard"))
    return run.sinks["tensorboard"]
