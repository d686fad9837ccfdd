"""Benchmark suites: registered names, suite sources (``PREFIX:PATH``), and folders holding any of
facts.jsonl, pairs.jsonl, fluency.jsonl and retrieval.jsonl."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UnusableInputError
from .pairs import load_pairs, read_jsonl
from .types import Suite, SuiteFolder

PARTS = ("facts", "pairs", "fluency", "retrieval")
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
            return source.load(Path(os.path.expandvars(os.path.expanduser(name[len(prefix) :]))))
    path = Path(os.path.expandvars(os.path.expanduser(name)))
    if not path.is_dir():
        known = ", ".join(sorted(folders) + sorted(s.prefix + "PATH" for s in registered if hasattr(s, "prefix")))
        raise UnusableInputError(f"{name}: not a suite folder or a registered suite", hint=f"registered: {known}")
    return read_suite_folder(path, path.name)


def read_suite_folder(path: Path, name: str) -> Suite:
    """A folder with any of facts.jsonl, pairs.jsonl, fluency.jsonl, retrieval.jsonl."""
    suite = Suite(name, path)
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
