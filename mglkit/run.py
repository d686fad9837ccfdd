"""A training run's folder as trainers see it (the contract's RunLog): metrics, notes, checkpoints.

mglkit writes ``training_logs/metrics.jsonl`` itself, a line per logged step, then hands the same
metrics to the ``log_metrics`` hook (W&B, TensorBoard, the terminal display).
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from . import tasks
from .outputs import write_file

log = logging.getLogger("mglkit.train")


class Run:
    def __init__(self, directory: Path, config, pm, is_main: bool = True):
        self.dir = directory
        self.config = config
        self.report_to = set(config.report_to)
        self.pm = pm
        self.is_main = is_main
        self.history: list[dict] = []
        self.total_steps = 0
        self.steps_per_epoch = 0
        self.sinks: dict[str, Any] = {}  # state metrics sinks keep between calls (a W&B run...)
        self.task: tasks.Task | None = None
        self._closing = contextlib.ExitStack()

    @property
    def logs(self) -> Path:
        return self.dir / "training_logs"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    def open(self) -> None:
        """Start the log file (main process only)."""
        if not self.is_main:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.logs / "training.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        self._closing.callback(handler.close)
        self._closing.callback(log.removeHandler, handler)

    def close(self) -> None:
        self._closing.close()

    def start(self, total_steps: int, steps_per_epoch: int) -> None:
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.note(f"training: {total_steps} optimizer steps ({steps_per_epoch} per epoch)")
        if self.is_main and self.task is None:
            self.task = self._closing.enter_context(tasks.progress("train", total=total_steps))

    def log(self, step: int, metrics: dict) -> None:
        if not self.is_main:
            return
        metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        self.history.append({"step": step, **metrics})
        log.info("step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        with open(self.logs / "metrics.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.task is not None:
            self.task.update(completed=step)
        self.pm.hook.log_metrics(run=self, step=step, metrics=metrics)

    def note(self, message: str) -> None:
        if self.is_main:
            log.info(message)
            tasks.note(message)

    def checkpointed(self, step: int) -> None:
        """A trainer saved a checkpoint: the ``run_checkpoint`` hook hears of it."""
        if self.is_main:
            call_safely(self.pm, "run_checkpoint", run=self, step=step)

    def rewind(self, step: int) -> None:
        """On resume, forget what was logged after the checkpoint (it will be logged again), and a
        torn last line of a killed run."""
        path = self.logs / "metrics.jsonl"
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
                kept.append(row)
        with write_file(path, "w") as out:
            out.writelines(json.dumps(row) + "\n" for row in kept)
        self.history = kept


def checkpoint_dirs(folder: Path) -> list[Path]:
    """Complete checkpoints (``step-N``, or TRL's ``checkpoint-N``), oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(("step-", "checkpoint-"))]
    found = [p for p in found if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def peak_memory_mb() -> float:
    """Peak memory of this process: GPU memory allocated on CUDA, else the resident set."""
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_stats(run: Run, plan: dict, result, validation: dict | None) -> dict:
    """training_stats.json: the original guide's keys, defined honestly, and what was ambiguous there."""
    train_logs = [h for h in run.history if "loss" in h]
    evals = [h for h in run.history if "eval_loss" in h]
    at_best = next((h for h in evals if h["step"] == result.best_step), evals[-1] if evals else None)
    adapter = run.dir / "adapter_model.safetensors"
    stats = {
        "base_model": run.config.base,
        "total_samples": plan["pairs"],
        "train_samples": plan["train_pairs"],
        "test_samples": plan["eval_pairs"],
        "epochs": run.config.epochs,
        "total_steps": result.optimizer_steps,
        "micro_steps": result.micro_steps,
        "avg_loss": sum(h["loss"] for h in train_logs) / len(train_logs) if train_logs else None,
        # TRL's metric names: the reward margin and accuracy on the eval split, at the best step
        "mean_reward": at_best.get("eval_rewards/margins") if at_best else None,
        "validation_accuracy": at_best.get("eval_rewards/accuracies") if at_best else None,
        "eval_loss": at_best["eval_loss"] if at_best else None,
        "best_step": result.best_step,
        "training_time": round(result.seconds, 2),
        "model_size_mb": round(adapter.stat().st_size / 2**20, 3),
        "trainer": run.config.trainer,
        "engine": result.stats.get("engine"),  # the engine and processes the trainer ran on
        "world_size": result.stats.get("world_size"),
        "trainable_parameters": plan["trainable_parameters"],
        "total_parameters": plan["total_parameters"],
        "trainable_percent": plan["trainable_percent"],
        "train_tokens": result.train_tokens,
        "tokens_per_second": result.train_tokens / result.seconds if result.seconds else None,
        "peak_memory_mb": round(result.peak_memory_mb, 1),
        "truncated_pairs": plan["truncated_pairs"],
        "final_train": train_logs[-1] if train_logs else None,
    }
    stats.update(result.stats)
    stats["validation"] = validation
    return stats


def call_safely(pm, hook: str, **kwargs) -> None:
    """Call a hook whose failures are notes, never the run's end (plots, uploads...)."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        try:
            impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:
            tasks.note(f"warning: plugin '{impl.plugin_name}' failed in {hook}: {type(exc).__name__}: {exc}")
