"""Preference pairs: stream JSONL (plain or TRL's conversational form) with 1-based line numbers."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from .errors import UnusableInputError
from .findings import ERROR, WARNING, Finding

TEXT_FIELDS = ("prompt", "chosen", "rejected")
# Extra fields the bundled data uses; other unknown fields are kept, with a warning.
KNOWN_EXTRA_FIELDS = frozenset({"id", "period", "flaw", "source", "note"})
PAIR_FIELDS = TEXT_FIELDS + tuple(sorted(KNOWN_EXTRA_FIELDS))  # what --columns may map a column to
_BOM = b"\xef\xbb\xbf"
_NO_FINDINGS: list = []  # shared, never mutated: RecordChecker copies before adding


@dataclass(slots=True)
class Pair:
    """One preference pair. ``prompt``/``chosen``/``rejected`` are always plain text;
    ``messages`` keeps the conversational form when the record used it."""

    prompt: str
    chosen: str
    rejected: str
    line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, list[dict]] | None = None
    row: int | None = None  # 1-based data row in its file (every source kind; JSONL: non-blank lines)
    # derived values shared by validators; dropped when a text changes
    _words: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)
    _plain: bool | None = field(default=None, repr=False, compare=False)

    def words(self, name: str) -> list[str]:
        """The whitespace-separated words of a text field (computed once)."""
        cache = self._words
        if cache is None:
            cache = self._words = {}
        words = cache.get(name)
        if words is None:
            words = cache[name] = getattr(self, name).split()
        return words

    def is_plain(self) -> bool:
        """True when every field holds only Mongolian-alphabet letters, digits and common
        punctuation: then no hygiene, script or Kazakh-letter rule can fire (the common case)."""
        if self._plain is None:
            from .mongolian import is_plain_text

            self._plain = is_plain_text("\n".join((self.prompt, self.chosen, self.rejected)))
        return self._plain

    def set_text(self, name: str, text: str) -> None:
        setattr(self, name, text)
        self._words = self._plain = None

    def to_record(self) -> dict[str, Any]:
        if self.messages is None:
            record = {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}
        else:
            record = dict(self.messages)
        record.update(self.extra)
        return record


@dataclass(slots=True)
class Record:
    """One input record (a non-blank JSONL line, a data row): the pair it holds, or the format
    findings that stop it. ``line`` is None for sources without lines (Parquet, datasets)."""

    line: int | None
    raw: bytes  # the JSONL line as read; empty for other sources
    pair: Pair | None
    findings: list[Finding]
    row: int | None = None
    file: str | None = None  # set when the source has several files (a folder)
    obj: Any = None  # a row of another source that held no pair, as decoded, for the rejects file

    def reject_entry(self, reasons: list[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {"line": self.line, "reasons": reasons}
        if self.row is not None:
            entry["row"] = self.row
        if self.file is not None:
            entry["file"] = self.file
        if self.pair is not None:
            entry["record"] = self.pair.to_record()
        elif self.obj is not None or not self.raw:
            entry["record"] = self.obj
        else:
            try:
                entry["record"] = loads(self.raw)
            except ValueError:
                entry["raw"], entry["raw_encoding"] = base64.b64encode(self.raw).decode("ascii"), "base64"
        return entry


def display_name(source: str | os.PathLike | None) -> str:
    return "<stdin>" if source in (None, "-") else str(source)


def open_source(source: str | os.PathLike) -> IO[bytes]:
    """Open a JSONL file (``-`` is standard input) for binary streaming."""
    if str(source) == "-":
        return sys.stdin.buffer
    from .resources import resolve_data_path

    path = resolve_data_path(str(source))
    if path.is_dir():
        raise UnusableInputError(f"{path}: is a directory", hint="give a .jsonl file")
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise UnusableInputError(f"{path}: no such file", hint="check the path") from None
    except OSError as exc:
        raise UnusableInputError(f"{path}: cannot read: {exc.strerror}") from None


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers; a BOM and CR line ends are tolerated."""
    for number, raw in enumerate(stream, 1):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        raw = raw.rstrip(b"\r\n")
        if raw.strip():
            yield number, raw


def _bad(line: int, message: str, hint: str, field: str | None = None) -> Finding:
    return Finding("format", ERROR, message, line=line, field=field, hint=hint)


def _describe(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _messages_text(
    messages: list, name: str, line: int, findings: list[Finding], roles: tuple[str, ...] | None
) -> str | None:
    parts = []
    for i, message in enumerate(messages, 1):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            findings.append(
                _bad(
                    line,
                    f"message {i} of '{name}' has no string 'content'",
                    'conversational fields are lists of {"role": ..., "content": ...}',
                    name,
                )
            )
            return None
        if roles is None or message.get("role") in roles:
            parts.append(message["content"])
    return "\n".join(parts)


def _split_implicit_prompt(obj: dict) -> None:
    """TRL's implicit-prompt form: chosen and rejected are whole conversations sharing a prefix."""
    chosen, rejected = obj.get("chosen"), obj.get("rejected")
    if "prompt" in obj or not isinstance(chosen, list) or not isinstance(rejected, list):
        return
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared:
        obj["prompt"], obj["chosen"], obj["rejected"] = chosen[:shared], chosen[shared:], rejected[shared:]


def decode_line(line: int, raw: bytes) -> dict | Finding:
    """One JSONL line as a JSON object, or the format finding that says why it is not one."""
    try:
        obj = loads(raw)
    except ValueError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            bad = raw[uexc.start : uexc.start + 1].hex()
            return _bad(
                line,
                f"line is not valid UTF-8 (byte 0x{bad} at position {uexc.start})",
                "save the file as UTF-8",
            )
        return _bad(line, f"line is not valid JSON: {exc}", "each line must be one complete JSON object (JSONL)")
    if not isinstance(obj, dict):
        return _bad(
            line,
            f"line is {_describe(obj)}, not a JSON object",
            'each line must be an object like {"prompt": ..., "chosen": ..., "rejected": ...}',
        )
    return obj


def parse_record(line: int, raw: bytes, row: int | None = None) -> Record:
    """Parse one JSONL line into a Record; problems become format findings, never exceptions."""
    obj = decode_line(line, raw)
    if type(obj) is not dict:
        return Record(line, raw, None, [obj], row)
    return pair_from_object(obj, line, raw, row)


def pair_from_object(obj: dict, line: int | None, raw: bytes = b"", row: int | None = None) -> Record:
    prompt, chosen, rejected = obj.get("prompt"), obj.get("chosen"), obj.get("rejected")
    if (
        type(prompt) is str
        and type(chosen) is str
        and type(rejected) is str
        and prompt.strip()
        and chosen.strip()
        and rejected.strip()
        and KNOWN_EXTRA_FIELDS.issuperset(obj.keys() - TEXT_FIELDS)
    ):  # the common case, kept cheap
        extra = {k: v for k, v in obj.items() if k not in TEXT_FIELDS} if len(obj) > 3 else {}
        return Record(line, raw, Pair(prompt, chosen, rejected, line, extra, None, row), _NO_FINDINGS, row)
    findings: list[Finding] = []
    _split_implicit_prompt(obj)
    texts, messages = _texts(obj, line, findings)
    extra = {k: v for k, v in obj.items() if k not in TEXT_FIELDS}
    for name in extra:
        if name not in KNOWN_EXTRA_FIELDS:
            findings.append(
                Finding(
                    "format",
                    WARNING,
                    f"unknown field '{name}' (kept)",
                    line=line,
                    field=name,
                    hint="known extra fields: " + ", ".join(sorted(KNOWN_EXTRA_FIELDS)),
                )
            )
    if any(f.severity == ERROR for f in findings):
        return Record(line, raw, None, findings, row)
    pair = Pair(texts["prompt"], texts["chosen"], texts["rejected"], line, extra, messages or None, row)
    return Record(line, raw, pair, findings, row)


def _texts(obj: dict, line: int, findings: list[Finding]) -> tuple[dict[str, str], dict[str, list]]:
    """The text of each field (a string, or the messages of a conversation), with format findings."""
    texts: dict[str, str] = {}
    messages: dict[str, list] = {}
    for name in TEXT_FIELDS:
        value = obj.get(name)
        if value is None:
            what = "missing" if name not in obj else "null"
            findings.append(
                _bad(line, f"field '{name}' is {what}", "each record needs prompt, chosen and rejected", name)
            )
        elif isinstance(value, str):
            texts[name] = value
        elif isinstance(value, list):
            text = _messages_text(value, name, line, findings, None if name == "prompt" else ("assistant",))
            if text is not None:
                texts[name], messages[name] = text, value
        else:
            expected = f"field '{name}' is {_describe(value)}, expected a string or a list of messages"
            findings.append(_bad(line, expected, "use a string", name))
    for name, text in texts.items():
        if not text.strip():
            findings.append(_bad(line, f"field '{name}' is empty", "write the text", name))
    if messages and len(messages) != len(texts):
        findings.append(_bad(line, "fields mix plain strings and message lists", "use one form for all three"))
    return texts, messages


def iter_records(stream: IO[bytes]) -> Iterator[Record]:
    for line, raw in iter_lines(stream):
        yield parse_record(line, raw)


def looks_like_json_array(first_line: bytes) -> bool:
    return first_line.lstrip().startswith(b"[")


def load_pairs(
    source: str | os.PathLike,
    *,
    split: str | None = None,
    subset: str | None = None,
    columns: dict[str, str] | str | None = None,
) -> Iterator[Pair]:
    """Stream the pairs of any data source (mglkit.sources: JSONL, Parquet, CSV/TSV, a folder, a
    save_to_disk folder, ``hf:ORG/NAME``); the first bad record raises, naming file, line or row, and
    field. ``columns`` maps fields to the columns that hold them (``"prompt=question,..."`` or a dict)."""
    from .sources import SourceSpec, iter_pairs, parse_columns

    mapping = parse_columns(columns, PAIR_FIELDS) if isinstance(columns, str) else columns
    return iter_pairs(SourceSpec(str(source), split, subset, mapping))


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL file; anything else is unusable input
    naming the file and line."""
    path = os.fspath(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise UnusableInputError(f"{path}: cannot read: {exc.strerror}", hint="check the path") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                record = loads(raw)
            except ValueError as exc:
                raise UnusableInputError(
                    f"{path}, line {number}: not valid JSON ({exc})", hint="one JSON object per line, UTF-8"
                ) from None
            if not isinstance(record, dict):
                raise UnusableInputError(f"{path}, line {number}: not a JSON object", hint="one JSON object per line")
            yield number, record


_BIG = 2.0**63  # orjson reads integers beyond 64 bits as floats


def loads(raw: bytes):
    """JSON, fast; integers of any size kept exact (a float that large may have been one: read again)."""
    obj = orjson.loads(raw)
    return json.loads(raw) if _has_big_float(obj) else obj


def _has_big_float(value) -> bool:
    if type(value) is float:
        return not -_BIG < value < _BIG
    if type(value) is dict:
        return any(_has_big_float(v) for v in value.values())
    if type(value) is list:
        return any(_has_big_float(v) for v in value)
    return False


def dumps(record, default=None) -> bytes:
    """One JSON line (without the newline), fast; integers of any size kept exact. ``default`` turns
    what JSON lacks into what it has (see ``sources.json_default``)."""
    try:
        return orjson.dumps(record, default=default)
    except TypeError:  # an integer beyond 64 bits
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=default).encode()


def write_jsonl(records: Iterable[dict], path: str | os.PathLike) -> None:
    """Write records whole or not at all (see mglkit.outputs)."""
    from .outputs import write_file

    with write_file(path) as out:
        for record in records:
            out.write(dumps(record) + b"\n")
