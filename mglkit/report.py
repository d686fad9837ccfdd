"""Rendering of results: rich tables for people, JSON for machines. Rich stays in this module."""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson

from .findings import ERROR, WARNING, Finding

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
    where = f"line {f.line}" if f.line is not None else "dataset"
    field = f", {f.field}" if f.field else ""
    return f"{where}{field}: [{f.rule}] {f.message}"


class JsonFindingsWriter:
    """Streams one report's findings as a JSON array, then closes the object with its verdict."""

    def __init__(self, stream: IO[bytes], file: str):
        self.stream = stream
        self.first = True
        stream.write(b'{"file": ' + orjson.dumps(file) + b', "findings": [')

    def __call__(self, finding: Finding) -> None:
        self.stream.write((b"\n  " if self.first else b",\n  ") + orjson.dumps(finding.to_dict()))
        self.first = False

    def close(self, report) -> None:
        tail = {"verdict": report.verdict, "counts": report.counts}
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
