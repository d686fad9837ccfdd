"""Published benchmarks read in their own formats, as suites the built-in evaluators score.

- Belebele (``facebook/belebele``: ``flores_passage``, ``question``, ``mc_answer1..4``,
  ``correct_answer_num``): reading comprehension as facts items, the passage and question as the
  context of four answers (multiple choice by log-likelihood; acc and acc_norm).
- SIB-200 (``index_id``, ``category``, ``text``): topic classification as facts items, the sentence
  as the context of each category's label (in Mongolian unless other labels are given).
- FLORES-200 sentences (``khk_Cyrl.devtest`` / ``.dev``, one sentence a line, or the Hub's Parquet
  with a ``text`` or ``sentence`` column) as fluent passages for the fluency evaluator.

A path is anything mglkit's data-source layer reads (``mglkit.open_data``). A malformed row is
unusable input (exit 2) named by file, row and field.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from mglkit import ConfigError, SourceRow, SourceSpec, Suite, UnusableInputError, open_data

BELEBELE_ANSWERS = ("mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4")
BELEBELE_TEXTS = ("flores_passage", "question", *BELEBELE_ANSWERS)

# SIB-200's seven categories (as its files spell them) and their names in Mongolian
SIB200_LABELS = {
    "science/technology": "шинжлэх ухаан, технологи",
    "travel": "аялал жуулчлал",
    "politics": "улс төр",
    "sports": "спорт",
    "health": "эрүүл мэнд",
    "entertainment": "зугаа цэнгэл",
    "geography": "газарзүй",
}
SIB200_QUESTION = "Энэ өгүүлбэр ямар сэдэвтэй вэ?"
FLORES_TEXT_FILES = (".dev", ".devtest")
FLORES_COLUMNS = ("text", "sentence")  # flores_plus, facebook/flores


def _bad(row: SourceRow, field: str, problem: str, hint: str) -> UnusableInputError:
    return UnusableInputError(f"{row.where(field)}: {problem}", hint=hint)


def _text(row: SourceRow, field: str, hint: str) -> str:
    value = row.obj.get(field)
    if not isinstance(value, str) or not value.strip():
        problem = "missing" if value is None else "empty" if isinstance(value, str) else "not text"
        raise _bad(row, field, problem, hint)
    return value


def _rows(path: str | os.PathLike) -> Iterator[SourceRow]:
    with open_data(SourceSpec(str(path))) as source:
        yield from source.rows()


def _digest(path: str | os.PathLike) -> str | None:
    with open_data(SourceSpec(str(path))) as source:
        return source.digest()


def _belebele_answer(row: SourceRow) -> int:
    value = row.obj.get("correct_answer_num")
    number = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if number not in ("1", "2", "3", "4"):
        raise _bad(row, "correct_answer_num", f"{value!r} is not 1, 2, 3 or 4", "Belebele's answers are numbered 1-4")
    return int(number) - 1


def read_belebele(path: str | os.PathLike) -> Suite:
    """Belebele items as facts items: ``context`` the passage, ``choices`` the four answers."""
    hint = "Belebele rows have " + ", ".join(BELEBELE_TEXTS) + " and correct_answer_num"
    facts = []
    for row in _rows(path):
        texts = {field: _text(row, field, hint) for field in BELEBELE_TEXTS}
        facts.append({
            "id": f"belebele-{row.row}", "period": None, "context": texts["flores_passage"],
            "question": texts["question"], "choices": [texts[a] for a in BELEBELE_ANSWERS],
            "answer": _belebele_answer(row), "aliases": [],
            "link": row.obj.get("link"), "question_number": row.obj.get("question_number"),
        })  # fmt: skip
    return _suite("belebele", path, facts=facts)


def read_sib200(path: str | os.PathLike, labels: Mapping[str, str] | None = None) -> Suite:
    """SIB-200 rows as facts items: the sentence as context, each category's label a choice.
    ``labels`` maps SIB-200's categories to the labels scored (default: Mongolian)."""
    labels = dict(labels or SIB200_LABELS)
    if len(set(labels.values())) < len(labels):
        raise ConfigError("SIB-200 labels: two categories share a label", hint="give each category its own label")
    categories, choices = list(labels), list(labels.values())
    known = "categories: " + ", ".join(categories)
    facts = []
    for row in _rows(path):
        text = _text(row, "text", "SIB-200 rows have index_id, category and text")
        category = row.obj.get("category")
        if category not in labels:
            raise _bad(row, "category", f"{category!r} is not a SIB-200 category", known)
        facts.append({
            "id": f"sib200-{row.obj.get('index_id', row.row)}", "period": category, "context": text,
            "question": SIB200_QUESTION, "choices": choices, "answer": categories.index(category), "aliases": [],
        })  # fmt: skip
    return _suite("sib200", path, facts=facts)


def _flores_lines(path: Path) -> Iterator[tuple[int, str]]:
    """A FLORES sentence file: one sentence a line; a blank line would shift the alignment."""
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                where = f"{path}, line {number}"
                try:
                    text = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise UnusableInputError(f"{where}: not UTF-8", hint="FLORES files are UTF-8") from None
                if not text.strip():
                    raise UnusableInputError(f"{where}: empty line", hint="one sentence a line, none blank")
                yield number, text
    except FileNotFoundError:
        raise UnusableInputError(f"{path}: no such file", hint="check the path") from None


def read_flores(path: str | os.PathLike) -> Suite:
    """FLORES sentences as fluent passages (``id``, ``text``)."""
    if Path(path).suffix in FLORES_TEXT_FILES:
        passages = [{"id": f"flores-{n}", "text": t} for n, t in _flores_lines(Path(path))]
    else:
        passages = []
        for row in _rows(path):
            column = next((c for c in FLORES_COLUMNS if c in row.obj), FLORES_COLUMNS[0])
            text = _text(row, column, "FLORES rows have a text (flores_plus) or sentence column")
            passages.append({"id": f"flores-{row.obj.get('id', row.row)}", "text": text})
    return _suite("flores", path, fluency=passages)


def _suite(kind: str, path: str | os.PathLike, **parts) -> Suite:
    """The suite, named ``kind:FILE`` and recording its file's sha256 (as a suite folder's files are)."""
    if not any(parts.values()):
        raise UnusableInputError(f"{path}: no {kind} items", hint="check the file")
    path = Path(path)
    files = {path.name: {"version": None, "sha256": _digest(path)}}
    return Suite(f"{kind}:{path.name}", path, files=files, **parts)
