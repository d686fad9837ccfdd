"""Rendering of results: rich tables for people, JSON for machines. Rich stays in this module."""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson

from .findings import ERROR, WARNING, Finding, position
from .hookspecs import hookimpl

_VERDICT_STYLE = {
    "pass": "bold green",
    "pass-with-warnings": "bold yellow",
    "fail": "bold red",
    "unusable": "bold red",
}
_SEVERITY_STYLE = {ERROR: "red", WARNING: "yellow"}


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def print_validation(report, out=None) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = out or console()
    c = report.counts
    out.print(
        f"[bold]{escape(report.file)}[/]: [{_VERDICT_STYLE[report.verdict]}]{report.verdict}[/]  "
        f"{c['records']} records, {c['valid']} valid, {c['errors']} errors, {c['warnings']} warnings"
    )
    if not report.rules:
        return
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in ("rule", "errors", "warnings", "info"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for rule, s in sorted(report.rules.items()):
        table.add_row(rule, _count(s.errors, "red"), _count(s.warnings, "yellow"), _count(s.infos, ""))
    out.print(table)
    for rule, s in sorted(report.rules.items()):
        for f in s.examples:
            out.print("  " + escape(_finding_line(f)), style=_SEVERITY_STYLE.get(f.severity, "dim"))
            if f.snippet:
                out.print(f"      «{escape(f.snippet)}»", style="dim")
            if f.hint:
                out.print(f"      hint: {escape(f.hint)}", style="dim")
        shown = len(s.examples)
        total = s.errors + s.warnings + s.infos
        if total > shown:
            out.print(f"  … and {total - shown} more {rule} findings (--json lists all)", style="dim")


def _count(n: int, style: str) -> str:
    return f"[{style}]{n}[/]" if n and style else str(n)


def _finding_line(f: Finding) -> str:
    where = position(f.line, f.row) or "dataset"
    field = f", {f.field}" if f.field else ""
    return f"{where}{field}: [{f.rule}] {f.message}"


JSON_SCHEMA = 2
MAX_HINTS = 50  # distinct hints kept per rule


class JsonFindingsWriter:
    """Streams one report's findings as a JSON array, then closes the object with its verdict, counts
    and a ``rules`` table. A finding's ``hint`` is an index into its rule's ``hints`` (schema 2): the
    report stays proportional to the findings, however many share a hint."""

    def __init__(self, stream: IO[bytes], file: str):
        self.stream = stream
        self.first = True
        self.hints: dict[str, dict[str, int]] = {}
        stream.write(
            b'{"schema": ' + str(JSON_SCHEMA).encode() + b', "file": ' + orjson.dumps(file) + b', "findings": ['
        )

    def __call__(self, finding: Finding) -> None:
        data = finding.to_dict(hint=False)
        hints = self.hints.setdefault(finding.rule, {})
        if finding.hint is not None and (finding.hint in hints or len(hints) < MAX_HINTS):
            data["hint"] = hints.setdefault(finding.hint, len(hints))
        else:
            data["hint"] = None
        self.stream.write((b"\n  " if self.first else b",\n  ") + orjson.dumps(data))
        self.first = False

    def close(self, report) -> None:
        rules = {
            rule: {
                "errors": s.errors,
                "warnings": s.warnings,
                "infos": s.infos,
                "hints": list(self.hints.get(rule, {})),
            }
            for rule, s in sorted(report.rules.items())
        }
        tail = {"verdict": report.verdict, "counts": report.counts, "rules": rules}
        self.stream.write(b"\n], " + orjson.dumps(tail)[1:])


def write_json(data: Any, stream: IO[bytes] | None = None) -> None:
    stream = stream or sys.stdout.buffer
    stream.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    stream.flush()


def print_plugins(rows: list[dict[str, Any]], load_errors, out=None) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = out or console()
    table = Table(header_style="bold", show_lines=False)
    for column in ("plugin", "version", "hooks", "registers"):
        table.add_column(column)
    for row in rows:
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["registers"].items())
        version = row["version"] or "—"
        table.add_row(escape(row["name"]), version, "\n".join(row["hooks"]), escape(registers))
    out.print(table)
    for error in load_errors:
        out.print(f"[red]{escape(str(error))}[/]")


class TerminalReporter:
    """mglkit.progress on a terminal: a bar with ETA per task, notes printed above the bars."""

    def __init__(self, out=None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=out or console(stderr=True),
        )
        self.open = 0

    def start(self, description, total):
        if self.open == 0:
            self.progress.start()
        self.open += 1
        return _RichTask(self.progress, self.progress.add_task(description, total=total, info=""))

    def finish(self, task):
        self.open -= 1
        if self.open == 0:
            self.progress.stop()

    def note(self, message):
        self.progress.console.print(message, style="dim", highlight=False, markup=False)


class _RichTask:
    def __init__(self, progress, task_id):
        self.progress, self.id = progress, task_id

    def advance(self, amount=1):
        self.progress.advance(self.id, amount)

    def update(self, completed=None, total=None, info=None):
        fields = {"info": info} if info is not None else {}
        self.progress.update(self.id, completed=completed, total=total, **fields)


class LineReporter:
    """mglkit.progress when stderr is not a terminal: a line when a task starts and when it ends."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def start(self, description, total):
        import time

        self._say(f"{description}...")
        return _LineTask(description, time.perf_counter())

    def finish(self, task):
        import time

        self._say(f"{task.description}: done in {time.perf_counter() - task.start:.1f} s")

    def note(self, message):
        self._say(message)

    def _say(self, text):
        print(f"mglkit: {text}", file=self.stream, flush=True)


class _LineTask:
    def __init__(self, description, start):
        self.description, self.start = description, start

    def advance(self, amount=1):
        pass

    def update(self, completed=None, total=None, info=None):
        pass


def reporter():
    """The progress reporter for this terminal (or pipe)."""
    return TerminalReporter() if sys.stderr.isatty() else LineReporter()


class TrainingDisplay:
    """A ``log_metrics`` implementation the train command registers: loss, reward accuracy, margin
    and tokens/s beside the training bar; eval results as lines."""

    __name__ = "mglkit-terminal"

    @staticmethod
    def _info(metrics: dict) -> str | None:
        if "reward" in metrics:  # GRPO's total reward
            return f"loss {metrics.get('loss', 0):.4f}  reward {metrics['reward']:.3f}  kl {metrics.get('kl', 0):.4f}"
        if "loss" not in metrics:
            return None
        info = (
            f"loss {metrics['loss']:.4f}  acc {metrics.get('rewards/accuracies', 0):.2f}  "
            f"margin {metrics.get('rewards/margins', 0):+.3f}"
        )
        if "tokens_per_second" in metrics:
            info += f"  {metrics['tokens_per_second']:,.0f} tok/s"
        return info

    @hookimpl
    def log_metrics(self, run, step, metrics):
        from . import tasks

        info = self._info(metrics)
        if info is not None and run.task is not None:
            run.task.update(info=info)
        elif "eval_loss" in metrics:
            tasks.note(
                f"step {step}: eval loss {metrics['eval_loss']:.4f}, "
                f"reward accuracy {metrics.get('eval_rewards/accuracies', 0):.2f}, "
                f"margin {metrics.get('eval_rewards/margins', 0):+.3f}"
            )


def _key_values(title: str, items: dict, out=None) -> None:
    from rich.table import Table

    out = out or console()
    table = Table(title=title, header_style="bold", show_edge=False)
    table.add_column("item")
    table.add_column("value", justify="right")
    for key, value in items.items():
        if isinstance(value, dict) or value is None:
            continue
        if isinstance(value, bool):  # before int: a bool is one
            text = "yes" if value else "no"
        elif isinstance(value, float):
            text = f"{value:,.4g}"
        else:
            text = f"{value:,}" if isinstance(value, int) else str(value)
        table.add_row(key, text)
    out.print(table)


def print_training_summary(stats: dict, out=None) -> None:
    _key_values("training summary", stats, out)


def print_plan(plan: dict, out=None) -> None:
    _key_values("training plan (--dry-run)", plan, out)


def print_eval(report, out=None) -> None:
    """One table: a row per metric grouped by evaluator, a column per model, deltas vs the base."""
    from rich.markup import escape
    from rich.table import Table

    out = out or console()
    table = Table(title=f"mglkit eval — {escape(report.suite)}", header_style="bold", show_lines=False)
    table.add_column("evaluator")
    table.add_column("metric")
    for column in report.columns:
        table.add_column(escape(column), justify="right")
    for name, by_column in report.results.items():
        metrics: list[str] = []
        for result in by_column.values():
            metrics += [m for m in result.metrics if m not in metrics]
        for i, metric in enumerate(metrics):
            cells = []
            for column in report.columns:
                score = by_column[column].metrics.get(metric)
                if score is None:
                    cells.append("—")
                    continue
                cell = f"{score.value:.3f} [dim]±{(score.high - score.low) / 2:.3f}[/]"
                delta = report.deltas.get(name, {}).get(column, {}).get(metric)
                if delta is not None:
                    style = ("green" if delta.value > 0 else "red") if delta.significant else "dim"
                    cell += f" [{style}]{delta.value:+.3f}{'*' if delta.significant else ''}[/]"
                cells.append(cell)
            label = ("  " if metric.endswith(("[unseen]", "[seen]")) else "") + escape(metric)  # splits under theirs
            table.add_row(name if i == 0 else "", label, *cells, end_section=i == len(metrics) - 1)
    out.print(table)
    out.print(
        "[dim]mean ±half-width of the 95% bootstrap interval; deltas vs base, * when the paired 95% interval "
        "excludes zero (a few dozen items make noisy numbers)[/]"
    )
    for suite, split in report.splits.items():
        counts = split["counts"]
        text = (
            f"{suite}: metric[unseen] on the {counts['unseen']} items the training data does not state "
            f"(generalisation: the headline), metric[seen] on the {counts['seen']} it states (retention); "
            f"labels from {split['source']}"
        )
        out.print(f"[dim]{escape(text)}[/]")
    for name, by_column in report.results.items():
        for column, result in by_column.items():
            for title, parts in result.groups.items():
                shown = ", ".join(f"{escape(k)} {s.value:.3f}" for k, s in parts.items())
                out.print(f"[dim]{name} {title} ({escape(column)}): {shown}[/]")
    for warning in report.warnings:
        out.print(f"[yellow]warning: {escape(warning)}[/]")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    out.print(f"[dim]time: {timing}[/]")


def print_contamination(report, out=None) -> None:
    """``mglkit contamination``: each contaminated item with its strongest evidence, then the counts."""
    from rich.markup import escape

    out = out or console()
    data = report.to_dict()
    for item in data["items"]:
        more = f", {item['matches'] - 1} more matches" if item["matches"] > 1 else ""
        out.print(f"[bold]{escape(item['id'])}[/]  {escape(item['where'])}  [dim]({item['signal']} {item['score']:.2f}"
                  f"{more})[/]")  # fmt: skip
        out.print(f"    {escape(item['reason'])}: [dim]«{escape(item['snippet'])}»[/]")
    counts = ", ".join(f"{kind} {data['contaminated'][kind]} of {n}" for kind, n in data["checked"].items())
    style = "bold red" if data["items"] else "bold green"
    verdict = f"{len(data['items'])} items in the training data" if data["items"] else "no item in the training data"
    out.print(f"[bold]{escape(data['suite'])}[/]: [{style}]{verdict}[/] ({counts})")


def print_runs(summaries, out=None) -> None:
    """``mglkit runs``: one row per run (``mglkit.runlist.RunSummary``)."""
    from rich.markup import escape
    from rich.table import Table

    out = out or console()
    if not summaries:
        out.print("no runs found")
        return
    table = Table(header_style="bold", show_edge=False)
    with_benchmarks = any(s.benchmarks for s in summaries)
    columns = ("run", "status", "base", "trainer", "date", "steps", "eval loss (best)", "reward acc")
    for column in columns + (("benchmarks",) if with_benchmarks else ()):
        table.add_column(column, justify="right" if column in columns[5:] else "left")
    styles = {"finished": "green", "stopped": "red", "running": "yellow"}

    def num(value):
        return "—" if value is None else f"{value:.4g}"

    for s in summaries:
        loss = "—" if s.eval_loss is None else f"{s.eval_loss:.4f} ({s.best_eval_loss:.4f})"
        marks = [", ".join(f"{k} {v:.3f}" for k, v in s.benchmarks.items())] if with_benchmarks else []
        table.add_row(escape(s.name), f"[{styles.get(s.status, '')}]{s.status}[/]", escape(s.base or "—"),
                      s.trainer or "—", (s.date or "—")[:16].replace("T", " "), num(s.steps), loss,
                      num(s.reward_accuracy), *marks)  # fmt: skip
    out.print(table)
