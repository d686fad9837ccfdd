"""A Finding is one problem found in a dataset, the unit every validator reports in."""

from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(slots=True)
class Finding:
    rule: str
    severity: str
    message: str
    line: int | None = None  # 1-based; None for dataset-wide findings
    field: str | None = None
    hint: str | None = None
    snippet: str | None = None
    file: str | None = None
    row: int | None = None  # 1-based data row of its file, for every source kind

    def to_dict(self) -> dict:
        data = {
            "rule": self.rule, "severity": self.severity, "message": self.message, "line": self.line,
            "row": self.row, "field": self.field, "hint": self.hint, "file": self.file,
        }  # fmt: skip
        if self.snippet is not None:
            data["snippet"] = self.snippet
        return data


def position(line: int | None, row: int | None) -> str | None:
    """ "line 4", "line 9 (row 7)" when they differ (blank lines, a CSV header), "row 7" without lines."""
    if line is None:
        return None if row is None else f"row {row}"
    return f"line {line}" if row in (None, line) else f"line {line} (row {row})"
