"""Benchmark suites: folders with facts.jsonl, pairs.jsonl and/or fluency.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .errors import MglkitError
from .pairs import Pair, load_pairs

PARTS = ("facts", "pairs", "fluency", "retrieval")
_FACT_FIELDS = {"id": str, "question": str, "choices": list, "answer": int, "aliases": list}
_FLUENCY_FIELDS = {"id": str, "text": str}
_RETRIEVAL_FIELDS = {"id": str, "question": str}


@dataclass
class Suite:
    name: str
    path: Path
    facts: list[dict] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    fluency: list[dict] = field(default_factory=list)
    retrieval: list[dict] = field(default_factory=list)

    def has(self, part: str) -> bool:
        return bool(getattr(self, part))

    def limited(self, limit: int | None) -> Suite:
        if not limit:
            return self
        fluent = [r for r in self.fluency if "degraded" not in r][:limit]
        keep = {r["id"] for r in fluent}
        degraded = [r for r in self.fluency if r.get("source_id") in keep]
        return Suite(self.name, self.path, self.facts[:limit], self.pairs[:limit], fluent + degraded,
                     self.retrieval[:limit])  # fmt: skip


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


def _check_retrieval(path: Path, items: list[dict]) -> None:
    """Each item names the passages that answer it: "passage_ids" (any of them counts), or one "passage_id"."""
    for number, item in enumerate(items, 1):
        ids = item.get("passage_ids", [item["passage_id"]] if isinstance(item.get("passage_id"), str) else None)
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise MglkitError(
                f"{path}, item {number} ({item['id']}), field 'passage_ids': missing or not a list of passage ids",
                hint='give "passage_ids": ["id", ...] (or one "passage_id": "id")',
            )
        item["passage_ids"] = ids


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
    suite = Suite(name_or_path if name_or_path in registered else path.name, path)
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
        raise MglkitError(
            f"{path}: none of facts.jsonl, pairs.jsonl, fluency.jsonl, retrieval.jsonl",
            hint="a suite folder holds at least one",
        )
    return suite
