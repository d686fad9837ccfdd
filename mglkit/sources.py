"""Data sources: a name the user gives, streamed as records that carry their position.

A name is ``-`` (JSONL on standard input), ``hf:ORG/NAME`` (a Hugging Face dataset, with a split
and a subset), or a path: a bundled name such as ``data/mgl_history_grpo.jsonl``, a file (JSONL,
``.jsonl.gz``, ``.jsonl.zst``, Parquet, CSV, TSV; any other suffix is read as JSONL), a
``datasets.save_to_disk`` folder, or a folder of such files. Without the prefix a name is never a
Hub id. Nothing is loaded whole: files are read line by line or batch by batch.

The readers: ``source_files`` (JSONL, CSV/TSV, Parquet), ``source_datasets`` (save_to_disk, hf:),
both producing ``source_chunks``. pyarrow, datasets and zstandard (extra: data) are imported only by
the readers that need them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, MglkitError, UnusableInputError
from .findings import ERROR, position
from .pairs import Pair, display_name, iter_lines

if TYPE_CHECKING:
    from .source_chunks import Chunk

HF_PREFIX = "hf:"


@dataclass(frozen=True)
class SourceSpec:
    """What the user named: ``name`` (path, bundled name, ``-`` or ``hf:org/name``), the ``split``
    and ``subset`` of a dataset, and ``columns``, record field -> the column that holds it."""

    name: str
    split: str | None = None
    subset: str | None = None
    columns: Mapping[str, str] | None = None

    @classmethod
    def named(cls, name: str | os.PathLike, config) -> SourceSpec:
        """``name`` with what a config (validate's, train's) says of it: split, subset, columns."""
        return cls(str(name), config.split, config.subset, parse_columns(config.columns))


@dataclass(slots=True)
class SourceRow:
    """One decoded record: its fields (columns renamed) and where it is."""

    obj: dict[str, Any]
    file: str
    row: int
    line: int | None

    def where(self, field: str | None = None) -> str:
        named = f", field '{field}'" if field else ""
        return f"{self.file}, {position(self.line, self.row)}{named}"


def parse_columns(
    text: str | None, fields: Iterable[str] | None = None, where: str = "--columns"
) -> dict[str, str] | None:
    """``"prompt=question,chosen=good"`` -> ``{"prompt": "question", "chosen": "good"}``; ``fields``
    limits the names on the left (what a record has), so a mapping written backwards is caught."""
    if not text or not text.strip():
        return None
    allowed = None if fields is None else set(fields)
    columns: dict[str, str] = {}
    for part in text.split(","):
        field, sep, column = (s.strip() for s in part.partition("="))
        if not sep or not field or not column:
            raise ConfigError(f"{where}: '{part.strip()}' is not FIELD=COLUMN", hint="e.g. prompt=question")
        if allowed is not None and field not in allowed:
            raise ConfigError(f"{where}: '{field}' is not a record field", hint="fields: " + ", ".join(sorted(allowed)))
        if field in columns or column in columns.values():
            raise ConfigError(f"{where}: '{field}={column}' repeats a field or a column")
        columns[field] = column
    return columns


def columns_check(fields: Iterable[str]) -> Callable[[str, str], None]:
    """The ``columns`` setting's check: a mapping onto ``fields``, named where it was given."""
    fields = tuple(fields)

    def check(text: str, where: str) -> None:
        parse_columns(text, fields, where)

    return check


class Source:
    """An opened source. ``chunks()`` streams it (once); ``rows()`` gives decoded rows; ``files``
    are the local files read (outputs must not replace them); ``kind`` names the format."""

    def __init__(self, name: str, kind: str, chunks: Callable[[], Iterator[Chunk]], files: Iterable[Path] = ()):
        self.name = name
        self.kind = kind
        self.files = list(files)
        self._chunks = chunks
        self._open: list[Iterator] = []

    def chunks(self) -> Iterator[Chunk]:
        chunks = self._chunks()
        self._open.append(chunks)
        return chunks

    def rows(self) -> Iterator[SourceRow]:
        """Decoded rows in order; the first malformed one raises UnusableInputError naming it."""
        for chunk in self.chunks():
            for i, item in enumerate(chunk.decoded()):
                line, row = chunk.line(i), chunk.first_row + i
                if type(item) is not dict:
                    where = SourceRow({}, chunk.file, row, line).where(item.field)
                    raise UnusableInputError(f"{where}: {item.message}", hint=item.hint)
                yield SourceRow(item, chunk.file, row, line)

    def digest(self) -> str | None:
        """sha256 of the files read, in order (a single file: its own sha256); None for a Hub stream."""
        if not self.files:
            return None
        import hashlib

        digest = hashlib.sha256()
        for path in self.files:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    def close(self) -> None:
        for chunks in self._open:
            chunks.close()  # runs the readers' finally blocks: files closed
        self._open = []

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_data(spec: SourceSpec | str) -> Source:
    """Open what the user named; a missing path, a missing library or an unknown dataset is
    UnusableInputError (exit 2) with a hint. Reading errors later are UnusableInputError too."""
    if isinstance(spec, str):
        spec = SourceSpec(spec)
    name, columns = spec.name, spec.columns
    if name.startswith(HF_PREFIX):
        from .source_datasets import hub_source

        return hub_source(spec)
    from .source_chunks import line_chunks
    from .source_files import file_chunks, file_kind

    if name == "-":
        return Source("<stdin>", "jsonl", lambda: line_chunks(iter_lines(sys.stdin.buffer), "<stdin>", columns))
    from .resources import resolve_data_path

    path = resolve_data_path(name)
    if path.is_dir():
        return _folder_source(path, spec)
    if not path.exists():
        raise UnusableInputError(f"{path}: no such file", hint="check the path")
    if not os.access(path, os.R_OK):
        raise UnusableInputError(f"{path}: cannot read: permission denied")
    kind = file_kind(path)
    file = display_name(name)
    return Source(file, kind, lambda: file_chunks(path, kind, file, columns), [path])


def _data_files(folder: Path) -> list[Path]:
    from .source_files import SUFFIXES

    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES
    )


def _folder_source(folder: Path, spec: SourceSpec) -> Source:
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        from .source_datasets import saved_dataset_source

        return saved_dataset_source(folder, spec)
    from .source_files import file_chunks, file_kind

    files = _data_files(folder)
    if not files:
        nested = any(p.is_dir() and _data_files(p) for p in folder.iterdir())
        hint = f"a folder laid out as a Hub dataset is read with hf:{spec.name}" if nested else "give a data file"
        raise UnusableInputError(f"{folder}: no data files (.jsonl, .parquet, .csv, .tsv, ...)", hint=hint)

    def chunks() -> Iterator[Chunk]:
        for path in files:
            yield from file_chunks(path, file_kind(path), os.path.join(spec.name, path.name), spec.columns)

    return Source(display_name(spec.name), "folder", chunks, files)


def not_jsonl(name: str | os.PathLike) -> bool:
    """Whether a name is data of another kind than JSONL: a Hub dataset, a Parquet, CSV or TSV file,
    a folder without JSONL files (a save_to_disk folder, a folder of Parquet files)."""
    from .source_files import file_kind

    if str(name).startswith(HF_PREFIX):
        return True
    path = Path(name)
    return not any(path.glob("*.jsonl")) if path.is_dir() else path.is_file() and file_kind(path) != "jsonl"


def iter_pairs(spec: SourceSpec | str | os.PathLike) -> Iterator[Pair]:
    """The pairs of any source, in order (as ``load_pairs`` for JSONL); the first record that holds
    no pair raises MglkitError naming file, line or row, and field."""
    with open_data(spec if isinstance(spec, SourceSpec) else SourceSpec(str(spec))) as source:
        for chunk in source.chunks():
            for record in chunk.records():
                error = next((f for f in record.findings if f.severity == ERROR), None)
                if error is not None:
                    where = SourceRow({}, chunk.file, record.row, record.line).where(error.field)
                    raise MglkitError(f"{where}: {error.message}", hint=error.hint)
                yield record.pair


def provenance(spec: SourceSpec) -> dict[str, Any]:
    """What a run records of its data: ``dataset_path`` and the sha256 of the files read (a Hub
    dataset, streamed, has none: its name, subset and split say what it was), and the split, subset
    and column mapping when given."""
    if spec.name.startswith(HF_PREFIX):
        where, digest = spec.name, None
    else:
        from .resources import resolve_data_path

        with open_data(spec) as source:
            where, digest = str(resolve_data_path(spec.name)), source.digest()
    given = {"dataset_split": spec.split, "dataset_subset": spec.subset, "dataset_columns": spec.columns}
    return {"dataset_path": where, "dataset_sha256": digest, **{k: v for k, v in given.items() if v}}
