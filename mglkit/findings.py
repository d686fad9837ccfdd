"""A Finding is one problem found in a dataset, the unit every validator reports in; a Tally counts
them as they stream past, into a ValidationReport."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(slots=True)
class Finding:
    rule: str
    severity: str  # error, warning or info
    message: str
    line: int | None = None  # 1-based; None for dataset-wide findings
    field: str | None = None
    hint: str | None = None
    snippet: str | None = None
    file: str | None = None
    row: int | None = None  # 1-based data row of its file, for every source kind

    def to_dict(self, hint: bool = True) -> dict:
        data = {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "line": self.line,
            "row": self.row,
            "field": self.field,
            "file": self.file,
        }
        if hint:
            data["hint"] = self.hint
        if self.snippet is not None:
            data["snippet"] = self.snippet
        return data


def position(line: int | None, row: int | None) -> str | None:
    """ "line 4", "line 9 (row 7)" when they differ (blank lines, a CSV header), "row 7" without lines."""
    if line is None:
        return None if row is None else f"row {row}"
    return f"line {line}" if row in (None, line) else f"line {line} (row {row})"


@dataclass
class Stats:
    """Counts of one file's validation so far."""

    records: int = 0  # non-blank lines, data rows
    valid: int = 0  # records without errors
    errors: int = 0
    warnings: int = 0
    infos: int = 0


VERDICTS = ("pass", "pass-with-warnings", "fail", "unusable")
EXAMPLES_PER_RULE = 3


@dataclass
class RuleSummary:
    errors: int = 0
    warnings: int = 0
    infos: int = 0
    examples: list[Finding] = field(default_factory=list)


@dataclass
class ValidationReport:
    file: str
    verdict: str
    stats: Stats
    rules: dict[str, RuleSummary]
    findings: list[Finding] | None  # every finding, unless the caller streamed them elsewhere

    @property
    def counts(self) -> dict[str, int]:
        s = self.stats
        return {"records": s.records, "valid": s.valid, "errors": s.errors, "warnings": s.warnings}

    @property
    def ok(self) -> bool:
        return self.verdict in ("pass", "pass-with-warnings")

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "verdict": self.verdict,
            "counts": self.counts,
            "findings": [f.to_dict() for f in self.findings or []],
        }

    def first_error(self) -> str:
        """The first error findings, in one line (the examples kept per rule)."""
        errors = [f for s in self.rules.values() for f in s.examples if f.severity == ERROR]
        errors.sort(key=lambda f: (f.line is None and f.row is None, f.line or f.row or 0))
        located = ((position(f.line, f.row), f) for f in errors[:3])
        return "; ".join(f"{at + ': ' if at else ''}{f.rule}: {f.message}" for at, f in located)

    def summary(self) -> dict[str, Any]:
        """Counts by rule and the first findings: what a training run records of its data's check."""
        return {
            "verdict": self.verdict,
            "counts": self.counts,
            "rules": {r: {"errors": s.errors, "warnings": s.warnings, "infos": s.infos} for r, s in self.rules.items()},
            "examples": [f.to_dict() for s in self.rules.values() for f in s.examples],
        }


def worst_verdict(verdicts) -> str:
    return max(verdicts, key=VERDICTS.index, default="pass")


def exit_code(verdict: str) -> int:
    return {"fail": 1, "unusable": 2}.get(verdict, 0)


class Tally:
    """Counts findings by severity and rule as they stream past, keeping a few examples of each."""

    def __init__(self, file: str, sink=None, keep: bool = True, strict: bool = False):
        self.file = file
        self.strict = strict  # warnings count as errors
        self.sink = sink
        self.stats = Stats()
        self.rules: dict[str, RuleSummary] = {}
        self.findings: list[Finding] | None = [] if keep else None

    def add(self, finding: Finding) -> None:
        if finding.file is None:  # a folder's findings name the file of the folder they are in
            finding.file = self.file
        if self.strict and finding.severity == WARNING:
            finding.severity = ERROR
        summary = self.rules.setdefault(finding.rule, RuleSummary())
        kind = {ERROR: "errors", WARNING: "warnings"}.get(finding.severity, "infos")
        setattr(self.stats, kind, getattr(self.stats, kind) + 1)
        setattr(summary, kind, getattr(summary, kind) + 1)
        if len(summary.examples) < EXAMPLES_PER_RULE:
            summary.examples.append(finding)
        if self.findings is not None:
            self.findings.append(finding)
        if self.sink is not None:
            self.sink(finding)

    def report(self, verdict: str | None = None) -> ValidationReport:
        s = self.stats
        if verdict is None:
            verdict = "fail" if s.errors else "pass-with-warnings" if s.warnings else "pass"
        return ValidationReport(self.file, verdict, s, self.rules, self.findings)

    def unusable(self, message: str, hint: str) -> ValidationReport:
        self.add(Finding("input", ERROR, message, hint=hint))
        return self.report("unusable")
