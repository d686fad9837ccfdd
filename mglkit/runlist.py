"""``mglkit runs``: every training run under some folders, one summary each, sortable, as data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import UnusableInputError
from .runlog import RunFolder, is_run, load_run, series

DEFAULT_DIRS = ("runs", "models")
SORT_KEYS = ("date", "name", "steps", "eval_loss", "best_eval_loss", "reward_accuracy", "status")
# the number that sums up each evaluator, for the adapter column
HEADLINE_METRICS = {"preference": "reward_accuracy", "facts": "acc", "fluency": "score_fluent", "retrieval": "mrr"}


@dataclass
class RunSummary:
    name: str  # the folder, relative to the folder listed
    path: str
    status: str  # finished, stopped or running
    base: str | None
    trainer: str | None
    date: str | None  # ISO time the run started
    steps: int | None
    eval_loss: float | None  # the last evaluation's
    best_eval_loss: float | None
    reward_accuracy: float | None  # at the best evaluation; else the last logged
    benchmarks: dict[str, float] = field(default_factory=dict)  # evaluator/metric -> adapter's value

    def to_dict(self) -> dict:
        return asdict(self)


def find_runs(directory: Path) -> list[Path]:
    """Run folders at most two levels under ``directory`` (the folder itself counts too)."""
    if is_run(directory):
        return [directory]
    found = []
    for child in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if is_run(child):
            found.append(child)
        else:
            found += [g for g in sorted(child.iterdir()) if not g.name.startswith(".") and is_run(g)]
    return found


def _headlines(stats: dict) -> dict[str, float]:
    evaluators = ((stats.get("benchmarks") or {}).get("evaluators")) or {}
    found = {}
    for evaluator, by_column in evaluators.items():
        adapter = next((c for c in by_column if c != "base"), None)
        metrics = (by_column.get(adapter) or {}).get("metrics", {}) if adapter else {}
        metric = HEADLINE_METRICS.get(evaluator)
        if metric and f"{metric}[unseen]" in metrics:  # generalisation, when the suite has a seen / unseen split
            metric = f"{metric}[unseen]"
        score = metrics.get(metric) if metric else None
        if isinstance(score, dict) and isinstance(score.get("value"), int | float):
            found[f"{evaluator}/{metric}"] = score["value"]
    return found


def summarize(run: RunFolder, name: str) -> RunSummary:
    stats = run.stats or {}
    _, losses = series(run.rows, "eval_loss")
    _, accuracies = series(run.rows, "eval_rewards/accuracies")
    if not accuracies:
        _, accuracies = series(run.rows, "rewards/accuracies")
    accuracy = stats.get("validation_accuracy")
    started = run.started
    return RunSummary(
        name=name,
        path=str(run.path),
        status=run.status,
        base=run.base_model,
        trainer=run.trainer,
        date=started.isoformat(timespec="seconds") if started else None,
        steps=run.steps,
        eval_loss=losses[-1] if losses else None,
        best_eval_loss=min(losses) if losses else None,
        reward_accuracy=accuracy if isinstance(accuracy, int | float) else (accuracies[-1] if accuracies else None),
        benchmarks=_headlines(stats),
    )


def list_runs(
    directories: Sequence[str | os.PathLike] | None = None, sort: str = "date", reverse: bool = False
) -> list[RunSummary]:
    """Summaries of the runs under ``directories`` (default: ``runs/`` and ``models/`` where they
    exist), sorted by ``sort`` (one of ``SORT_KEYS``; runs without that value last)."""
    if sort not in SORT_KEYS:
        raise UnusableInputError(f"--sort {sort}: unknown key", hint="one of " + ", ".join(SORT_KEYS))
    if directories is None:
        directories = [d for d in DEFAULT_DIRS if Path(d).is_dir()]
    summaries = []
    for directory in map(Path, directories):
        if not directory.is_dir():
            raise UnusableInputError(f"{directory}: no such folder", hint="give a folder holding run folders")
        for path in find_runs(directory):
            name = str(path.relative_to(directory)) if path != directory else path.name
            summaries.append(summarize(load_run(path), str(directory / name) if len(directories) > 1 else name))
    present = [s for s in summaries if getattr(s, sort) is not None]
    absent = [s for s in summaries if getattr(s, sort) is None]
    return sorted(present, key=lambda s: getattr(s, sort), reverse=reverse) + absent


def command(pm, name: str):
    """``mglkit runs [DIR]...``"""
    import click

    from .cli import exit_help

    @click.command(name, epilog=exit_help(None))
    @click.argument("directories", nargs=-1)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable listing.")
    @click.option("--sort", default="date", show_default=True, type=click.Choice(SORT_KEYS), help="Sort by.")
    @click.option("--reverse", is_flag=True, help="Largest first.")
    def runs(directories, as_json, sort, reverse):
        """Every mglkit run under DIR (default: runs/ and models/), two levels deep: finished, stopped, running."""
        summaries = list_runs(list(directories) or None, sort, reverse)
        if as_json:
            from .report import write_json

            write_json([summary.to_dict() for summary in summaries])
        else:
            from .report import print_runs

            print_runs(summaries)
        return 0

    return runs
