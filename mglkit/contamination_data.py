"""What the contamination detector compares, and what it concludes: benchmark items (from a suite),
training texts (from pair, facts and corpus files), matches, and the seen / unseen labels of a suite
(computed, or read from the suite's committed manifest)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from .config import DEFAULT_DATASET
from .errors import MglkitError, UnusableInputError
from .pairs import read_jsonl
from .stemming import NAMES, keys, sentences, stem, stems

BUNDLED_TRAINING = (DEFAULT_DATASET, "data/facts_train.jsonl", "data/corpus")
# The manifest of a suite's seen / unseen items (benchmarks/make_splits.py writes the bundled one).
SPLITS_FILE = "splits.json"
SPLIT_KINDS = ("facts", "pairs", "fluency")

_ONE_A_LINE = "one JSON object per line"
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Item:
    """A benchmark item as the detector sees it. ``answers``: what a training text may state (any
    one for a facts item; ``required`` of them for a pair's key facts); ``text``: the wording the
    near-duplicate test compares (a pair's chosen answer, a fluency passage)."""

    id: str
    kind: str
    question: str
    answers: tuple[str, ...] = ()
    required: int = 1
    text: str = ""


@dataclass(frozen=True)
class TrainingText:
    """One training record: ``question`` is a pair's prompt, a facts question or a passage title;
    ``answer`` a chosen answer, a keyed choice with its aliases, or a passage. ``kind``: pairs, facts
    or corpus (a passage title is not a question, so the question signal skips passages)."""

    id: str
    where: str
    question: str
    answer: str
    kind: str = ""


@dataclass(frozen=True)
class Match:
    """Evidence that ``training_id`` (at ``where``: file and line) gives item ``item_id`` away: the
    ``signal`` (answer, question or wording), its ``score``, the ``reason`` in words and a ``snippet``
    of the training text that shows it."""

    item_id: str
    training_id: str
    where: str
    reason: str
    score: float
    signal: str
    snippet: str = ""


# Items ------------------------------------------------------------------------------------------


def fact_item(record: dict) -> Item:
    """A facts item ({"id", "question", "choices", "answer", "aliases"}): the keyed choice or an alias."""
    keyed = record["choices"][record["answer"]]
    return Item(str(record["id"]), "facts", record["question"], tuple(dict.fromkeys([keyed, *record["aliases"]])))


def pair_item(item_id: str, prompt: str, chosen: str, rejected: str) -> Item:
    """A preference pair: its key facts are what ``chosen`` says and ``rejected`` does not."""
    facts = key_facts(prompt, chosen, rejected)
    return Item(item_id, "pairs", prompt, facts, 1 if len(facts) <= 2 else 2, chosen)


def key_facts(prompt: str, chosen: str, rejected: str) -> tuple[str, ...]:
    """Numbers and names (runs of capitalised words inside a sentence, as stems) in ``chosen`` that
    neither ``rejected`` nor ``prompt`` has: for a wrong-date pair the right date, for a vague pair
    its facts."""
    elsewhere = set(_NUMBER.findall(rejected)) | set(_NUMBER.findall(prompt))
    others = keys(stems(f"{prompt} {rejected}"))
    facts = [n for n in _NUMBER.findall(chosen) if n not in elsewhere]
    for sentence in sentences(chosen):
        for run in NAMES.finditer(sentence):
            words = run.group().split()[1 if run.start() == 0 else 0 :]
            name = [stem(w.lower()) for w in words]
            if name and not all(others.has(w) for w in name):
                facts.append(" ".join(name))
    return tuple(dict.fromkeys(facts))


def items_from_suite(suite) -> list[Item]:
    """Facts, preference pairs, retrieval questions and fluent passages of a loaded suite."""
    items = [fact_item(r) for r in suite.facts]
    for pair_id, pair in zip(suite.pair_ids(), suite.pairs, strict=True):
        items.append(pair_item(pair_id, pair.prompt, pair.chosen, pair.rejected))
    items += [Item(str(r["id"]), "retrieval", r["question"]) for r in suite.retrieval]
    items += [Item(str(r["id"]), "fluency", "", text=r["text"]) for r in suite.fluency if "degraded" not in r]
    return items


# Training texts ---------------------------------------------------------------------------------


def training_texts(path: str | Path) -> list[TrainingText]:
    """A preference-pair file, a facts file (question, choices/answer, aliases) or a corpus JSONL
    ({"id", "title", "text"}), told apart by their fields; a folder means its *.jsonl files."""
    from .sources import not_jsonl

    if not_jsonl(path):  # Parquet, CSV, a save_to_disk folder, hf:...: pairs, through mglkit.sources
        return _pair_texts(path)
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not path.exists():
        raise UnusableInputError(f"{path}: no such file", hint="give a training JSONL file or a folder of them")
    texts: list[TrainingText] = []
    for file in files:
        if not file.is_file():  # a FIFO or a device would block or never end
            raise UnusableInputError(
                f"{file}: not a regular file", hint="give a training JSONL file or a folder of them"
            )
        records = list(read_jsonl(file))
        if not records:
            raise UnusableInputError(f"{file}: no records", hint=_ONE_A_LINE)
        if "prompt" in records[0][1]:
            texts += _pair_texts(file)
        else:
            texts += [_record_text(file, line, record) for line, record in records]
    return texts


def bundled_training() -> list[TrainingText]:
    """The training data mglkit ships: preference pairs, GRPO facts and the RAG corpus."""
    from .resources import bundled

    return [text for relative in BUNDLED_TRAINING for text in training_texts(bundled(relative))]


def _pair_texts(file: Path | str) -> list[TrainingText]:
    from .pairs import load_pairs

    try:
        pairs = list(load_pairs(file))
    except MglkitError as exc:
        raise UnusableInputError(str(exc), hint=exc.hint) from None
    name = Path(file).name
    return [TrainingText(str(p.extra.get("id", f"{name}:{p.line or p.row}")), f"{file}:{p.line or p.row}", p.prompt,
                         p.chosen, "pairs") for p in pairs]  # fmt: skip


def _record_text(file: Path, line: int, record: dict) -> TrainingText:
    where, name = f"{file}:{line}", str(record.get("id", f"{file.name}:{line}"))
    if isinstance(record.get("text"), str):
        return TrainingText(name, where, str(record.get("title", "")), record["text"], "corpus")
    question = record.get("question")
    choices, keyed, aliases = record.get("choices"), record.get("answer"), record.get("aliases", [])
    keyed_ok = isinstance(choices, list) and isinstance(keyed, int) and 0 <= keyed < len(choices)
    answer = [choices[keyed]] if keyed_ok else []
    if not isinstance(question, str) or not isinstance(aliases, list) or not answer + aliases:
        raise UnusableInputError(
            f"{file}, line {line}: neither a pair, a facts item nor a passage",
            hint='pairs have "prompt"/"chosen"/"rejected", facts "question"/"choices"/"answer"/"aliases", '
            'passages "text"',
        )
    return TrainingText(name, where, question, "; ".join(str(a) for a in dict.fromkeys(answer + aliases)), "facts")


# Seen / unseen ----------------------------------------------------------------------------------


def splits(
    items: Iterable[Item], matches: Iterable[Match], always_seen: Iterable[str] = ()
) -> dict[str, dict[str, str]]:
    """Per kind (facts, pairs, fluency), each item's split: ``seen`` when a training text gives it
    away (or it is in ``always_seen``), else ``unseen``. Retrieval items have no split: their
    answers are corpus passages by design."""
    seen = {m.item_id for m in matches} | set(always_seen)
    labelled: dict[str, dict[str, str]] = {kind: {} for kind in SPLIT_KINDS}
    for item in items:
        if item.kind in labelled:
            labelled[item.kind][item.id] = "seen" if item.id in seen else "unseen"
    return labelled


def load_splits(suite_path: str | Path) -> dict[str, str] | None:
    """A suite's committed seen / unseen labels ({item id: "seen" | "unseen"}), or None without a manifest."""
    path = Path(suite_path) / SPLITS_FILE
    if not path.is_file():
        return None
    try:
        manifest = orjson.loads(path.read_bytes())
        return {item: split for kind in SPLIT_KINDS for item, split in manifest["splits"][kind].items()}
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        hint = "regenerate it: python benchmarks/make_splits.py"
        raise UnusableInputError(f"{path}: not a splits manifest", hint=hint) from None
