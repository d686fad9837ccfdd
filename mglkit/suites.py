"""Benchmark suites: registered names, suite sources (``PREFIX:PATH``), and folders holding any of
facts.jsonl, pairs.jsonl, fluency.jsonl and retrieval.jsonl.

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
import os
import tomllib
from pathlib import Path

from .errors import ConfigError, UnusableInputError
from .pairs import load_pairs, read_jsonl
from .types import Suite, SuiteFolder

PARTS = ("facts", "pairs", "fluency", "retrieval")
MANIFEST = "suite.toml"
_FACT_FIELDS = {"id": str, "question": str, "choices": list, "answer": int, "aliases": list}
_FLUENCY_FIELDS = {"id": str, "text": str}
_RETRIEVAL_FIELDS = {"id": str, "question": str}


def _records(path: Path, required: dict[str, type]) -> list[dict]:
    records = []
    for number, record in read_jsonl(path):
        for name, kind in required.items():
            if not isinstance(record.get(name), kind):
                raise UnusableInputError(
                    f"{path}, line {number}, field '{name}': missing or not a {kind.__name__}",
                    hint="see the suite format in data/DATA.md",
                )
        records.append(record)
    return records


def _check_facts(path: Path, facts: list[dict]) -> None:
    for number, fact in enumerate(facts, 1):
        if len(fact["choices"]) < 2 or not 0 <= fact["answer"] < len(fact["choices"]):
            raise UnusableInputError(f"{path}, item {number} ({fact['id']}), field 'answer': not an index of 'choices'")


def _check_retrieval(path: Path, items: list[dict]) -> None:
    """Each item names the passages that answer it: "passage_ids" (any of them counts), or one "passage_id"."""
    for number, item in enumerate(items, 1):
        ids = item.get("passage_ids", [item["passage_id"]] if isinstance(item.get("passage_id"), str) else None)
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise UnusableInputError(
                f"{path}, item {number} ({item['id']}), field 'passage_ids': missing or not a list of passage ids",
                hint='give "passage_ids": ["id", ...] (or one "passage_id": "id")',
            )
        item["passage_ids"] = ids


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


def file_records(path: Path) -> dict[str, dict]:
    """{"facts.jsonl": {"version": "1.1" or None, "sha256": ...}, ...}: what a report records."""
    versions = _versions(path)
    return {
        f"{part}.jsonl": {"version": versions.get(part), "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
        for part in PARTS
        if (file := path / f"{part}.jsonl").is_file()
    }


def load_suite(name: str, pm=None) -> Suite:
    """A registered suite name first, then a ``PREFIX:PATH`` of a suite source, then a folder
    (``~`` and environment variables expanded)."""
    from .plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    registered = pm.all("suite")
    folders = {s.name: s for s in registered if isinstance(s, SuiteFolder)}
    if name in folders:
        return read_suite_folder(Path(folders[name].path), name)
    for source in registered:
        prefix = getattr(source, "prefix", None)
        if prefix and name.startswith(prefix):
            if not name[len(prefix) :].strip():
                raise ConfigError(f"{name}: no path after '{prefix}'", hint=f"e.g. {prefix}~/data/khk_Cyrl.jsonl")
            return source.load(Path(os.path.expandvars(os.path.expanduser(name[len(prefix) :]))))
    path = Path(os.path.expandvars(os.path.expanduser(name)))
    if not path.is_dir():
        known = ", ".join(sorted(folders) + sorted(s.prefix + "PATH" for s in registered if hasattr(s, "prefix")))
        raise UnusableInputError(f"{name}: not a suite folder or a registered suite", hint=f"registered: {known}")
    return read_suite_folder(path, path.name)


def read_suite_folder(path: Path, name: str) -> Suite:
    """A folder with any of facts.jsonl, pairs.jsonl, fluency.jsonl, retrieval.jsonl."""
    suite = Suite(name, path, files=file_records(path))
    if (path / "facts.jsonl").is_file():
        suite.facts = _records(path / "facts.jsonl", _FACT_FIELDS)
        _check_facts(path / "facts.jsonl", suite.facts)
    if (path / "pairs.jsonl").is_file():
        suite.pairs = list(load_pairs(path / "pairs.jsonl"))
    if (path / "fluency.jsonl").is_file():
        suite.fluency = _records(path / "fluency.jsonl", _FLUENCY_FIELDS)
    if (path / "retrieval.jsonl").is_file():
        suite.retrieval = _records(path / "retrieval.jsonl", _RETRIEVAL_FIELDS)
        _check_retrieval(path / "retrieval.jsonl", suite.retrieval)
    if not any(suite.has(part) for part in PARTS):
        raise UnusableInputError(
            f"{path}: none of facts.jsonl, pairs.jsonl, fluency.jsonl, retrieval.jsonl",
            hint="a suite folder holds at least one",
        )
    return suite
