"""Reading a training run's folder back: its marker and status, arguments, statistics and metrics.

Shared by ``mglkit report``, ``mglkit runs`` and the plots drawn at the end of a run. Everything
here tolerates a run that stopped early: a missing file is ``None`` plus a note saying what is
missing, never an exception; only a folder that is no run at all is an error.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import locks, outputs
from .errors import UnusableInputError

FINISHED, STOPPED, RUNNING = "finished", "stopped", "running"


def read_marker(run_dir: Path) -> dict | None:
    """The marker of a run folder (``.mglkit.json`` saying ``"kind": "run"``), else None."""
    marker = outputs.read_marker(run_dir)
    return marker if marker is not None and marker["kind"] == "run" and not marker.get("legacy") else None


def is_run(path: Path) -> bool:
    """A folder carrying mglkit's run marker; or, from before the marker, a run's arguments or logs."""
    return path.is_dir() and (
        read_marker(path) is not None
        or (path / "training_args.json").is_file()
        or (path / "training_logs" / "metrics.jsonl").is_file()
    )


def run_status(run_dir: Path, marker: dict | None = None) -> str:
    """finished, stopped or running: from the marker and its lock; without a marker, finished when
    the run wrote its statistics."""
    marker = marker if marker is not None else read_marker(run_dir)
    if marker is None:
        return FINISHED if (run_dir / "training_logs" / "training_stats.json").is_file() else STOPPED
    status = marker.get("status")
    if status == RUNNING:
        return RUNNING if locks.held(outputs.lock_path(run_dir)) else STOPPED  # else its process died
    return status if status in (FINISHED, STOPPED) else STOPPED


def _is_eval_row(row: dict) -> bool:
    return any(key.startswith("eval_") for key in row)


def read_metrics(path: Path) -> tuple[list[dict], list[str]]:
    """The rows of a ``metrics.jsonl`` as the run's final history, and notes on what was skipped.

    A resumed run logs again the steps after its checkpoint: when a step comes back, what was
    logged from that step on by the earlier attempt is dropped (the last occurrence wins). Train
    and eval rows of one step are kept apart, since an eval row follows the train row of its step.
    A line that is not JSON (the torn last line of a killed run) is skipped with a note.
    """
    rows: list[dict] = []
    notes: list[str] = []
    seen: set[tuple[float, bool]] = set()
    top = float("-inf")
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return [], [f"{path} is missing"]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int | float):
            where = "the last line" if number == len(lines) else f"line {number}"
            notes.append(f"{path.name}: {where} is not a complete metrics row (skipped)")
            continue
        step, kind = row["step"], _is_eval_row(row)
        if step < top or (step, kind) in seen:  # a rewind: the earlier attempt's rows from here on go
            rows = [r for r in rows if r["step"] < step or (r["step"] == step and _is_eval_row(r) != kind)]
            seen = {(r["step"], _is_eval_row(r)) for r in rows}
        rows.append(row)
        seen.add((step, kind))
        top = step
    return rows, notes


def series(rows: list[dict], name: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one metric, skipping rows without it and non-finite values."""
    points = [(r["step"], r[name]) for r in rows if isinstance(r.get(name), int | float) and r[name] == r[name]]
    points = [(s, v) for s, v in points if abs(v) != float("inf")]
    return [s for s, _ in points], [v for _, v in points]


def _read_json(path: Path, notes: list[str], missing: str) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notes.append(missing)
        return None
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name} could not be read ({exc})")
        return None
    return data if isinstance(data, dict) else None


def _read_jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                found.append(record)
    return found


@dataclass
class RunFolder:
    """One run's folder as read back; any part may be missing (see ``notes``)."""

    path: Path
    name: str
    status: str
    marker: dict | None
    args: dict | None  # training_args.json
    stats: dict | None  # training_logs/training_stats.json
    rows: list[dict]  # metrics.jsonl, rewinds resolved
    samples: list[dict]  # sample_generations.jsonl
    notes: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict:
        """The run's settings, its trainer's own (``options``: beta, loss...) among the others."""
        config = dict((self.args or {}).get("config") or {})
        options = config.pop("options", None)
        return {**config, **options} if isinstance(options, dict) else config

    @property
    def base_model(self) -> str | None:
        return (self.stats or {}).get("base_model") or self.config.get("base")

    @property
    def trainer(self) -> str | None:
        return (self.stats or {}).get("trainer") or self.config.get("trainer")

    @property
    def is_grpo(self) -> bool:
        return any("reward" in r or "kl" in r for r in self.rows) or self.trainer == "trl-grpo"

    @property
    def started(self) -> datetime | None:
        """When the run started: the marker's time, else the oldest of its files."""
        if self.marker and self.marker.get("started"):
            with contextlib.suppress(ValueError, TypeError):
                return datetime.fromisoformat(self.marker["started"])
        times = [p.stat().st_mtime for p in (self.path / "training_logs").glob("*") if p.is_file()]
        return datetime.fromtimestamp(min(times), UTC) if times else None

    @property
    def steps(self) -> int | None:
        if self.stats and isinstance(self.stats.get("total_steps"), int):
            return self.stats["total_steps"]
        return max((int(r["step"]) for r in self.rows), default=None)


def load_run(path: str | os.PathLike, name: str | None = None) -> RunFolder:
    """Read a run folder; exit-2 error when the folder is not an mglkit run."""
    path = Path(path)
    if not path.is_dir():
        raise UnusableInputError(f"{path}: no such folder", hint="give the --output folder of `mglkit train`")
    if not is_run(path):
        raise UnusableInputError(
            f"{path}: not an mglkit run (no {outputs.MARKER}, training_args.json or training_logs/metrics.jsonl)",
            hint="give the --output folder of `mglkit train`",
        )
    marker = read_marker(path)
    status = run_status(path, marker)
    notes: list[str] = []
    args = _read_json(path / "training_args.json", notes, "no training_args.json: the run's settings are unknown")
    stopped_note = "no training_stats.json: the run " + ("is still running" if status == RUNNING else "stopped early")
    stats = _read_json(path / "training_logs" / "training_stats.json", notes, stopped_note)
    rows, metric_notes = read_metrics(path / "training_logs" / "metrics.jsonl")
    samples = _read_jsonl(path / "training_logs" / "sample_generations.jsonl")
    return RunFolder(
        path, name or path.resolve().name, status, marker, args, stats, rows, samples, notes + metric_notes
    )
