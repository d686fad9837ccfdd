"""Benchmark suites: folders with facts.jsonl, pairs.jsonl, fluency.jsonl and/or retrieval.jsonl.

A suite folder may also hold ``suite.toml`` giving each file a version, as lm-evaluation-harness
versions its tasks::

    [files]
    facts = "1.1"

A loaded suite records each file's version (None when not given) and SHA-256, so two reports are
comparable only when they say so: the version tells a reader that a change was meant, the hash that
the files are the same.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .errors import MglkitError, UnusableInputError
from .pairs import Pair, load_pairs

PARTS = ("facts", "pairs", "fluency", "retrieval")
_FACT_FIELDS = {"id": str, "question": str, "choices": list, "answer": int, "aliases": list}
_FLUENCY_FIELDS = {"id": str, "text": str}
_RETRIEVAL_FIELDS = {"id": str, "question": str, "passage_id": str}
MANIFEST = "suite.toml"


@dataclass(frozen=True)
class SuiteFile:
    """One file of a suite as a report records it."""

    version: str | None
    sha256: str

    def to_dict(self) -> dict:
        return {"version": self.version, "sha256": self.sha256}


@dataclass
class Suite:
    name: str
    path: Path
    facts: list[dict] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    fluency: list[dict] = field(default_factory=list)
    retrieval: list[dict] = field(default_factory=list)
    files: dict[str, SuiteFile] = field(default_factory=dict)  # "facts.jsonl" -> version and hash

    def has(self, part: str) -> bool:
        return bool(getattr(self, part))

    def limited(self, limit: int | None) -> Suite:
        if not limit:
            return self
        fluent = [r for r in self.fluency if "degraded" not in r][:limit]
        keep = {r["id"] for r in fluent}
        degraded = [r for r in self.fluency if r.get("source_id") in keep]
        return Suite(self.name, self.path, self.facts[:limit], self.pairs[:limit], fluent + degraded,
                     self.retrieval[:limit], self.files)  # fmt: skip

    def files_dict(self) -> dict[str, dict]:
        """{"facts.jsonl": {"version": "1.1" or None, "sha256": ...}, ...}: what a report records."""
        return {name: record.to_dict() for name, record in self.files.items()}


def _records(path: Path, required: dict[str, type]) -> list[dict]:
    records = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise MglkitError(
                    f"{path}, line {number}: not valid JSON ({exc})", hint="one object per line"
                ) from None
            if not isinstance(record, dict):
                raise MglkitError(f"{path}, line {number}: not a JSON object", hint="one object per line")
            for name, kind in required.items():
                if not isinstance(record.get(name), kind):
                    raise MglkitError(
                        f"{path}, line {number}, field '{name}': missing or not a {kind.__name__}",
                        hint="see the suite format in DESIGN.md / data/DATA.md",
                    )
            records.append(record)
    return records


def _check_facts(path: Path, facts: list[dict]) -> None:
    for number, fact in enumerate(facts, 1):
        if len(fact["choices"]) < 2 or not 0 <= fact["answer"] < len(fact["choices"]):
            raise MglkitError(f"{path}, item {number} ({fact['id']}), field 'answer': not an index of 'choices'")


def _versions(path: Path) -> dict[str, str]:
    """The part -> version table of a suite folder's suite.toml (empty without one)."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return {}
    hint = 'a [files] table of quoted versions, e.g. facts = "1.1"'
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UnusableInputError(f"{manifest}: not valid TOML ({exc})", hint=hint) from None
    unknown = sorted(set(data) - {"files"})
    if unknown:
        raise UnusableInputError(f"{manifest}: unknown entry '{unknown[0]}'", hint=hint)
    files = data.get("files", {})
    if not isinstance(files, dict):
        raise UnusableInputError(f"{manifest}: 'files' is not a table", hint=hint)
    for part, version in files.items():
        where = f"{manifest}, [files], key '{part}'"
        if part not in PARTS:
            raise UnusableInputError(f"{where}: not a suite part", hint="parts: " + ", ".join(PARTS))
        if not isinstance(version, str) or not version.strip():
            raise UnusableInputError(f"{where}: the version must be a quoted string", hint=hint)
        if not (path / f"{part}.jsonl").is_file():
            raise UnusableInputError(f"{where}: the folder has no {part}.jsonl", hint=hint)
    return files


def _file_records(path: Path) -> dict[str, SuiteFile]:
    versions = _versions(path)
    present = [part for part in PARTS if (path / f"{part}.jsonl").is_file()]
    return {
        f"{part}.jsonl": SuiteFile(
            versions.get(part), hashlib.sha256((path / f"{part}.jsonl").read_bytes()).hexdigest()
        )
        for part in present
    }


def registered_suites(pm=None) -> dict[str, Path]:
    from .plugins import get_plugin_manager

    return {name: Path(item.obj) for name, item in (pm or get_plugin_manager()).collect("register_suites").items()}


def load_suite(name_or_path: str, pm=None) -> Suite:
    """A registered suite name is looked up before a path."""
    registered = registered_suites(pm)
    path = registered.get(name_or_path, Path(name_or_path))
    if not path.is_dir():
        known = ", ".join(sorted(registered)) or "none"
        raise MglkitError(f"{name_or_path}: not a suite folder or a registered suite", hint=f"registered: {known}")
    suite = Suite(name_or_path if name_or_path in registered else path.name, path, files=_file_records(path))
    if (path / "facts.jsonl").is_file():
        suite.facts = _records(path / "facts.jsonl", _FACT_FIELDS)
        _check_facts(path / "facts.jsonl", suite.facts)
    if (path / "pairs.jsonl").is_file():
        suite.pairs = list(load_pairs(path / "pairs.jsonl"))
    if (path / "fluency.jsonl").is_file():
        suite.fluency = _records(path / "fluency.jsonl", _FLUENCY_FIELDS)
    if (path / "retrieval.jsonl").is_file():
        suite.retrieval = _records(path / "retrieval.jsonl", _RETRIEVAL_FIELDS)
    if not any(suite.has(part) for part in PARTS):
        raise MglkitError(
            f"{path}: none of facts.jsonl, pairs.jsonl, fluency.jsonl, retrieval.jsonl",
            hint="a suite folder holds at least one",
        )
    return suite
