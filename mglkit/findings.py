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

    def to_dict(self) -> dict:
        data = {
            "rule": self.rule, "severity": self.severity, "message": self.message, "line": self.line,
            "field": self.field, "hint": self.hint, "file": self.file,
        }  # fmt: skip
        if self.snippet is not None:
            data["snippet"] = self.snippet
        return data
