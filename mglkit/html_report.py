"""``mglkit report``: one self-contained HTML file about runs and their evaluations.

Everything is inline (CSS, SVG figures); the page loads no script, font or image from anywhere,
reads offline and prints. Inputs are run folders, ``mglkit eval --json`` files (or their dicts)
and ``--save-items`` JSONL files; nothing here loads a model. A part that is missing (a run that
stopped early, no evaluation yet) is said in the page, never an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import __version__
from .errors import ConfigError, UnusableInputError
from .plots import (
    BASE_COLOR,
    COLORS,
    Interval,
    column_color,
    curve_svgs,
    draw_forest,
    draw_group_bars,
    require,
    svg,
)
from .runlog import RunFolder, load_run

SAMPLES_PER_EVALUATOR = 8
FINDINGS_SHOWN = 10
HEADLINE_STATS = ("total_steps", "train_samples", "test_samples", "avg_loss", "eval_loss", "validation_accuracy",
                  "mean_reward", "best_step", "trainable_parameters")  # fmt: skip
# settings that always differ between runs, or say nothing about the training
IGNORED_SETTINGS = {"output", "report_to", "dry_run", "resume"}


def fmt(value) -> str:
    """How every number appears in the page (4 significant digits; integers whole)."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def _duration(seconds: float | None) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d} ({seconds:.1f} s)"


def _method(run: RunFolder) -> str:
    c = run.config
    if not c:
        return run.trainer or "—"
    if run.is_grpo:
        return (
            f"{c.get('trainer')}: GRPO, rewards {c.get('rewards') or 'by data'}, "
            f"{c.get('num_generations')} answers per prompt, KL coefficient {c.get('kl_coef')}"
        )
    method = (run.args or {}).get("method")  # what the trainer said of itself, when recorded
    return (
        f"{c.get('trainer')}: {method}"
        if method
        else f"{c.get('trainer')}: DPO, {c.get('loss')} loss, beta {c.get('beta')}"
    )


def _versions(run: RunFolder) -> str:
    found = {"mglkit": (run.args or {}).get("mglkit_version") or (run.marker or {}).get("mglkit_version")}
    for source in (run.args, run.stats):
        found.update((source or {}).get("versions") or {})
    return ", ".join(f"{k} {v}" for k, v in found.items() if v) or "not recorded"


def run_header(run: RunFolder, color: str) -> dict:
    """The facts shown at the top of a run's card."""
    stats, args = run.stats or {}, run.args or {}
    started = run.started
    data = args.get("dataset_path") or run.config.get("dataset")
    validation = stats.get("validation") if isinstance(stats.get("validation"), dict) else None
    if validation:
        validation = {**validation, "examples": (validation.get("examples") or [])[:FINDINGS_SHOWN]}
    return {
        "name": run.name,
        "path": str(run.path),
        "color": color,
        "status": run.status,
        "facts": [
            ("base model", run.base_model or "—"),
            ("trainer", _method(run)),
            ("data", data or "—"),
            ("data sha256", args.get("dataset_sha256") or "—"),
            ("versions", _versions(run)),
            ("started", started.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if started else "—"),
            ("duration", _duration(stats.get("training_time"))),
            ("tokens/s", fmt(stats.get("tokens_per_second"))),
            ("peak memory", f"{fmt(stats.get('peak_memory_mb'))} MB" if stats.get("peak_memory_mb") else "—"),
        ],
        "headline": [(key, fmt(stats[key])) for key in HEADLINE_STATS if stats.get(key) is not None],
        "stats": [(k, fmt(v)) for k, v in stats.items() if not isinstance(v, dict)],
        "settings": [(k, fmt(v)) for k, v in sorted(run.config.items())],
        "samples": run.samples,
        "data": data,
        "validation": validation,
        "notes": run.notes,
    }


def differing_settings(runs: list[RunFolder]) -> list[tuple[str, list[str]]]:
    """Settings whose values are not the same in every run (one row per setting)."""
    if len(runs) < 2:
        return []
    keys = sorted({k for run in runs for k in run.config} - IGNORED_SETTINGS)
    rows = []
    for key in keys:
        values = [fmt(run.config[key]) if key in run.config else "—" for run in runs]
        if len(set(values)) > 1:
            rows.append((key, values))
    return rows


@dataclass
class EvalInput:
    """One evaluation to show: ``mglkit eval --json`` output and where it came from."""

    title: str
    data: dict
    items: list[dict] = field(default_factory=list)


def suite_name(data: dict) -> str | None:
    """The evaluated suite's name: ``{"name", "files"}`` in eval JSON since suite versions, a string before."""
    suite = data.get("suite")
    return suite.get("name") if isinstance(suite, dict) else suite


def load_eval(source: str | os.PathLike | dict, title: str | None = None) -> EvalInput:
    """An eval JSON file (or its dict); exit-2 error when it is missing or not eval output."""
    if isinstance(source, dict):
        data, title = source, title or f"suite {suite_name(source) or '?'}"
    else:
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnusableInputError(
                f"--eval {path}: no such file", hint="write one with `mglkit eval ... --json > FILE`"
            ) from None
        except (OSError, ValueError) as exc:
            raise UnusableInputError(
                f"--eval {path}: not readable JSON ({exc})", hint="`mglkit eval --json` output"
            ) from None
        title = title or path.name
    if not isinstance(data, dict) or not isinstance(data.get("evaluators"), dict):
        raise UnusableInputError(
            f"--eval {title}: not `mglkit eval --json` output (no 'evaluators' object)",
            hint="write one with `mglkit eval ... --json > FILE`",
        )
    return EvalInput(title, data)


def load_items(source: str | os.PathLike | Iterable[dict]) -> list[dict]:
    """Per-item records (``eval --save-items`` JSONL, or the records themselves); lines that are not
    JSON objects with ``evaluator`` and ``column`` are skipped."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            raise UnusableInputError(
                f"--items {path}: no such file", hint="write one with `mglkit eval ... --save-items FILE`"
            ) from None
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    else:
        records = list(source)
    return [r for r in records if isinstance(r, dict) and "evaluator" in r and "column" in r]


def _intervals(by_column: dict, metric: str, part: str = "metrics", group: str | None = None) -> list[Interval]:
    found = []
    for column, result in by_column.items():
        scores = result.get(part, {}).get(group, {}) if group else result.get(part, {})
        score = scores.get(metric)
        if not isinstance(score, dict):
            continue
        low, high = (score.get("ci95") or [None, None])[:2]
        delta = (result.get("delta_vs_base") or {}).get(metric) if part == "metrics" else None
        found.append(
            Interval(
                column,
                score.get("value"),
                low,
                high,
                (delta or {}).get("value"),
                bool((delta or {}).get("significant")),
            )
        )
    return found


def _differs(intervals: list[Interval]) -> bool:
    """Whether a metric is worth a figure: one column's score (an adapter's reward accuracy) is;
    a score equal in every column (retrieval does not depend on the model) is left to the table."""
    return len(intervals) == 1 or len({(i.value, i.low, i.high) for i in intervals}) > 1


def eval_view(item: EvalInput, names: list[str]) -> dict:
    """An evaluation's table, forest plots and group bars."""
    evaluators = []
    for number, (name, by_column) in enumerate(item.data["evaluators"].items()):
        metrics = list(dict.fromkeys(m for r in by_column.values() for m in r.get("metrics", {})))
        intervals = {m: _intervals(by_column, m) for m in metrics}
        table = [(m, [(i.column, i) for i in intervals[m]]) for m in metrics]
        key = f"{item.title}-{number}"
        plotted = {m: v for m, v in intervals.items() if _differs(v)}
        forest = svg(f"forest-{key}", draw_forest, plotted, names) if plotted else None
        same = [m for m in metrics if m not in plotted]
        titles = list(dict.fromkeys(t for r in by_column.values() for t in r.get("groups", {})))
        bars = []
        for g, title in enumerate(titles):
            keys = list(dict.fromkeys(k for r in by_column.values() for k in r.get("groups", {}).get(title, {})))
            groups = {k: _intervals(by_column, k, "groups", title) for k in keys}
            if any(_differs(v) for v in groups.values()):
                bars.append((title, svg(f"bars-{key}-{g}", draw_group_bars, f"{name}: {title}", groups, names)))
            elif any(groups.values()):
                same.append(title)
        evaluators.append(
            {
                "name": name,
                "columns": list(by_column),
                "table": table,
                "forest": forest,
                "bars": bars,
                "same": same,
                "seconds": (item.data.get("seconds") or {}).get(name),
            }
        )
    return {
        "title": item.title,
        "suite": suite_name(item.data),
        "splits": item.data.get("splits") or {},
        "columns": item.data.get("columns") or [],
        "evaluators": evaluators,
        "warnings": item.data.get("warnings") or [],
    }


def _suite_facts(suite: str | None) -> dict[str, dict]:
    """Facts of the evaluated suite by id, to show each question beside the answers; empty when the
    suite cannot be found here (the report then shows item ids)."""
    if not suite:
        return {}
    from .errors import MglkitError
    from .suites import load_suite

    try:
        return {f["id"]: f for f in load_suite(suite).facts}
    except (MglkitError, OSError):
        return {}


def sample_view(items: list[dict], suites: list[str]) -> list[dict]:
    """The same prompts answered by each column, side by side, per evaluator."""
    facts = {}
    for suite in dict.fromkeys(suites):
        facts.update(_suite_facts(suite))
    views = []
    for evaluator in dict.fromkeys(r["evaluator"] for r in items if "generation" in r):
        prompts: dict[str, dict] = {}
        for record in (r for r in items if r["evaluator"] == evaluator and "generation" in r):
            key = str(record.get("id") or record.get("prompt"))
            fact = facts.get(record.get("id"), {})
            entry = prompts.setdefault(
                key,
                {
                    "prompt": record.get("prompt") or fact.get("question") or key,
                    "expected": _expected(fact),
                    "answers": {},
                },
            )
            entry["answers"][record["column"]] = (record["generation"], record.get("generation_match"))
        columns = list(dict.fromkeys(r["column"] for r in items if r["evaluator"] == evaluator and "generation" in r))
        views.append(
            {
                "evaluator": evaluator,
                "columns": columns,
                "prompts": list(prompts.values())[:SAMPLES_PER_EVALUATOR],
                "total": len(prompts),
            }
        )
    return views


def _expected(fact: dict) -> str | None:
    choices, answer = fact.get("choices"), fact.get("answer")
    if isinstance(choices, list) and isinstance(answer, int) and 0 <= answer < len(choices):
        return choices[answer]
    return None


def render_report(
    runs: Sequence[str | os.PathLike] = (),
    evals: Sequence[str | os.PathLike | dict] = (),
    items: Sequence[str | os.PathLike | Iterable[dict]] = (),
    title: str | None = None,
) -> str:
    """The report as one HTML string. ``runs``: run folders; ``evals``: ``eval --json`` files or
    dicts; ``items``: ``--save-items`` files or records. Raises ``UnusableInputError`` (exit 2) for a
    folder that is not a run or a missing file; ``ReportExtraMissing`` without the report extra."""
    jinja2 = require("jinja2")
    require("matplotlib")
    folders = [load_run(path) for path in runs]
    _unique_names(folders)
    inputs = [load_eval(source) for source in evals]
    inputs += [
        EvalInput(f"{run.name}: benchmarks at the end of training", run.stats["benchmarks"])
        for run in folders
        if isinstance((run.stats or {}).get("benchmarks"), dict)
    ]
    records = [record for source in items for record in load_items(source)]
    names = [run.name for run in folders]
    names += [c for e in inputs for c in e.data.get("columns") or [] if c != "base" and c not in names]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mglkit", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    environment.filters["fmt"] = fmt
    return environment.get_template("report.html.j2").render(
        title=title or "mglkit report: " + (", ".join(names[: len(folders)]) or "evaluation"),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        runs=[run_header(run, column_color(run.name, names)) for run in folders],
        differing=differing_settings(folders),
        curves=curve_svgs(folders) if folders else [],
        evals=[eval_view(item, names) for item in inputs],
        samples=sample_view(records, [suite_name(e.data) for e in inputs]),
        has_items=bool(records),
        colors={"base": BASE_COLOR, "palette": COLORS},
    )


def _unique_names(folders: list[RunFolder]) -> None:
    """Two runs named alike (runs/a and other/a) get their parent folder in front."""
    for run in folders:
        if sum(other.name == run.name for other in folders) > 1:
            run.name = f"{run.path.resolve().parent.name}/{run.name}"


def write_report(
    output: str | os.PathLike,
    runs: Sequence[str | os.PathLike] = (),
    evals: Sequence[str | os.PathLike | dict] = (),
    items: Sequence[str | os.PathLike | Iterable[dict]] = (),
    title: str | None = None,
) -> Path:
    """Write the report atomically to ``output`` and return its path (see ``render_report``)."""
    from .outputs import write_file

    html = render_report(runs, evals, items, title)
    with write_file(output, "wb") as out:
        out.write(html.encode("utf-8"))
    return Path(output)


def command(pm, name: str):
    """``mglkit report RUN... [--eval FILE]... [--items FILE]... --output FILE``"""
    import click

    from .cli import exit_help

    @click.command(name, epilog=exit_help(None))
    @click.argument("runs", nargs=-1)
    @click.option("--eval", "evals", multiple=True, type=click.Path(dir_okay=False),
                  help="An `mglkit eval --json` file; repeat for several.")  # fmt: skip
    @click.option("--items", multiple=True, type=click.Path(dir_okay=False),
                  help="Its per-item results (`eval --save-items`), for the sample generations.")  # fmt: skip
    @click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
    @click.option("--title", help="The page's title.")
    def report(runs, evals, items, output, title):
        """One self-contained HTML file of runs (curves, settings, samples) and evaluations; never loads a model."""
        from .outputs import refuse_input

        if not runs and not evals:
            raise click.UsageError("give a run folder or an --eval file")
        refuse_input(output, [*evals, *items], "--output")
        target = Path(os.path.abspath(output))
        for run in runs:  # the report must never land on a file of a run it reads
            if Path(os.path.abspath(run)) in target.parents:
                raise ConfigError(f"--output {output} is inside the run {run}", hint="write the report elsewhere")
        click.echo(f"wrote {write_report(output, runs, evals, items, title)}")
        return 0

    return report
