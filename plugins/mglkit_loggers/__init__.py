"""Metrics sinks for training runs, through the ``log_metrics`` hook: a JSONL file and the
terminal always; Weights & Biases and TensorBoard when a run asks for them (--report-to)."""

import json

from mglkit import hookimpl


@hookimpl
def log_metrics(run, step, metrics):
    with open(run.logs / "metrics.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps({"step": step, **metrics}) + "\n")
    progress = run.sinks.get("progress")
    if progress is not None:
        progress.update(step, run.total_steps, metrics)
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
            from mglkit.errors import MglkitError

            raise MglkitError("--report-to wandb needs wandb", hint="pip install wandb") from None
        run.sinks["wandb"] = wandb.init(project="mglkit", name=run.dir.name, config=vars(run.config), dir=run.logs)
    return run.sinks["wandb"]


def _tensorboard(run):
    if "tensorboard" not in run.sinks:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            from mglkit.errors import MglkitError

            raise MglkitError("--report-to tensorboard needs tensorboard", hint="pip install tensorboard") from None
        run.sinks["tensorboard"] = SummaryWriter(log_dir=str(run.logs / "tensorboard"))
    return run.sinks["tensorboard"]
